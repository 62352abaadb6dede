# The ledger's writes that carry a rule: races told apart, an undo computed from the ledger's lines.
from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo

from gateway.domain.decisions import OrderView
from gateway.domain.order_state import Use, reverted, undone_units
from gateway.services.ports.ledger import Ledger, Recorded


class LostRace(Exception):
    """Another writer changed an order between our read and our version-checked update (the
    supervisor's steps in services/adjustments.py redo theirs; the hot path never raises it)."""


class Contended(Exception):
    """An order kept changing under a request however often it was decided again; redo the batch."""


def apply_use(ledger: Ledger, u: Use, expected: OrderView) -> OrderView | None:
    """The conditional update of a decided use (`Ledger.apply_use`): the order after, or None.

    `expected`: the order after as the domain computes it from our read (`order_state.after`)."""
    return ledger.apply_use(u, expected.but(version=expected.version + 1))


def write_undo(ledger: Ledger, new: OrderView, version: int) -> OrderView | None:
    """Write an undone order's state if its version is still `version`: the order after, or None."""
    return new.but(version=version + 1) if ledger.write_order(new, version) else None


def undo(
    ledger: Ledger,
    order: OrderView,
    ref: Recorded,
    tz: tzinfo,
    *,
    flow_pending: Sequence[tuple[int, int | None]] = (),
    consumed_pending: bool = False,
    undone_ids: Sequence[int] = (),
) -> OrderView:
    """The order once redemption `ref` is annulled or reverted (`order_state.reverted`), given the
    ledger's rows after it, then `flow_pending` (moves decided earlier in the same batch).

    The last use becomes the latest remaining use in the ledger (a minimum interval then runs from
    that one), unless a use in the same batch (`consumed_pending`) is later anyway.
    """
    flows: list[tuple[int, int | None]] = []
    if ref.inside_delta > 0:
        moves = ledger.moves_after(order.id, ref.id)
        flows = [(delta, undid if op in ("annul", "revert") else None) for delta, op, undid in moves]
    last_use: tuple[float | None, str | None] | None = None
    if undone_units(ref) and not consumed_pending:
        last_use = ledger.last_use(order.id, [ref.id, *undone_ids])
    return reverted(order, ref, tz, [*flows, *flow_pending], last_use)
