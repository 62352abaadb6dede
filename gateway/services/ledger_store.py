# The ledger's reads and writes inside the caller's transaction: orders, recorded redemptions, verdicts.
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import tzinfo
from typing import Any

from sqlalchemy import Connection, insert, select, update

from gateway.adapters.db import hotsql
from gateway.adapters.db.hotsql import ORDER_COLS, order_view
from gateway.adapters.db.models import Audit, Order, Redemption
from gateway.domain.codes import normalize_short
from gateway.domain.decisions import OrderView
from gateway.domain.order_state import Use, reverted, undone_units


class LostRace(Exception):
    """Another writer changed an order between our read and our version-checked update (the
    supervisor's steps in services/adjustments.py redo theirs; the hot path never raises it)."""


def load_orders(conn: Connection, codes: set[str], ids: set[int] | None = None) -> dict[str, OrderView]:
    """Orders by code (a short manual-entry code finds its order too); keys are what was asked for."""
    out: dict[str, OrderView] = {}
    if codes:
        for o in hotsql.select_orders(conn, list(codes)):
            out[o.code] = o
        missing = {normalize_short(c) for c in codes if c not in out}
        if missing:
            rows = conn.execute(
                select(Order.short_code, *ORDER_COLS).where(Order.short_code.in_(missing))
            ).all()
            by_short = {r[0]: order_view(r[1:]) for r in rows}
            for c in codes:
                v = by_short.get(normalize_short(c))
                if c not in out and v is not None:
                    out[c] = v
    if ids:
        for r in conn.execute(select(*ORDER_COLS).where(Order.id.in_(ids))):
            out.setdefault(r.code, order_view(r))
    return out


class Contended(Exception):
    """An order kept changing under a request however often it was decided again; redo the batch."""


def reload(conn: Connection, order_id: int) -> OrderView | None:
    """The order as it is now: committed by others since our read, plus our own transaction's changes
    (PostgreSQL's READ COMMITTED reads each statement afresh)."""
    for o in hotsql.select_orders_by_id(conn, [order_id]):
        return o
    return None


def apply_use(conn: Connection, u: Use, expected: OrderView) -> OrderView | None:
    """The conditional update of a decided use (`hotsql.apply_use`): the order after, or None.

    `expected`: the order after as the domain computes it from our read (`order_state.after`)."""
    return hotsql.apply_use(conn, u, replace(expected, version=expected.version + 1))


def write_undo(conn: Connection, new: OrderView, version: int) -> OrderView | None:
    """Write an undone order's state if its version is still `version`: the order after, or None."""
    matched = hotsql.update_orders(
        conn,
        [
            (
                new.used,
                new.last_used_at,
                new.last_used_gate,
                new.day_key,
                new.day_used,
                new.inside,
                new.inside_site_id,
                version + 1,
                new.id,
                version,
            )
        ],
    )
    return replace(new, version=version + 1) if matched == 1 else None


def undo_once(conn: Connection, redemption_id: int) -> bool:
    """Mark one redemption undone unless another writer undid it first (then False)."""
    res = conn.execute(
        update(Redemption)
        .where(Redemption.id == redemption_id, Redemption.undone.is_(False))
        .values(undone=True)
    )
    return bool(res.rowcount == 1)


def load_order(conn: Connection, *where: Any) -> OrderView | None:
    """The one order matching `where` (Core conditions on Order), or None."""
    row = conn.execute(select(*ORDER_COLS).where(*where)).first()
    return None if row is None else order_view(row)


def stored_verdicts(conn: Connection, keys: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    """key → (stored verdict JSON, request fingerprint) for the keys decided before."""
    if not keys:
        return {}
    return hotsql.select_verdicts(conn, list(keys))


_REF_COLS = (
    Redemption.idem_key,
    Redemption.id,
    Redemption.order_id,
    Redemption.qty,
    Redemption.ok,
    Redemption.op,
    Redemption.undone,
    Redemption.server_time,
    Redemption.direction,
    Redemption.inside_delta,
    Redemption.day_key,
    Redemption.site_id,
    Redemption.code,
    Redemption.gate,
)


def refs(conn: Connection, keys: list[str]) -> dict[str, Any]:
    """key → the recorded redemption (with what an undo needs) for the keys recorded."""
    if not keys:
        return {}
    return {r.idem_key: r for r in conn.execute(select(*_REF_COLS).where(Redemption.idem_key.in_(keys)))}


def redemption_ref(conn: Connection, redemption_id: int) -> Any:
    """One recorded redemption with what an undo needs (None when there is no such id)."""
    return conn.execute(select(*_REF_COLS).where(Redemption.id == redemption_id)).first()


def undo(
    conn: Connection,
    order: OrderView,
    ref: Any,
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
        rows = conn.execute(
            select(Redemption.inside_delta, Redemption.op, Redemption.ref_id)
            .where(Redemption.order_id == order.id, Redemption.id > ref.id, Redemption.inside_delta != 0)
            .order_by(Redemption.id)
        ).all()
        flows = [(int(r.inside_delta), r.ref_id if r.op in ("annul", "revert") else None) for r in rows]
    last_use: tuple[float | None, str | None] | None = None
    if undone_units(ref) and not consumed_pending:
        last = conn.execute(
            select(Redemption.server_time, Redemption.gate)
            .where(
                Redemption.order_id == order.id,
                Redemption.ok.is_(True),
                Redemption.op == "redeem",
                Redemption.qty > 0,
                Redemption.direction == "in",
                Redemption.undone.is_(False),
                Redemption.id.not_in([ref.id, *undone_ids]),
            )
            .order_by(Redemption.server_time.desc(), Redemption.id.desc())
            .limit(1)
        ).first()
        last_use = (last.server_time, last.gate) if last is not None else (None, None)
    return reverted(order, ref, tz, [*flows, *flow_pending], last_use)


def write_orders(conn: Connection, changed: dict[int, OrderView], versions: dict[int, int]) -> None:
    """Write the new state of every changed order, each only if its version is still the one we read.

    A row whose version moved was changed by another writer (another gateway process, a refund) after
    we read it: the update matches nothing, the total falls short, and the batch is redone.
    """
    if not changed:
        return
    rows = [
        (
            o.used,
            o.last_used_at,
            o.last_used_gate,
            o.day_key,
            o.day_used,
            o.inside,
            o.inside_site_id,
            versions[order_id] + 1,
            order_id,
            versions[order_id],
        )
        for order_id, o in changed.items()
    ]
    matched = hotsql.update_orders(conn, rows)
    if matched != len(rows):
        raise LostRace(f"{len(rows) - matched} order(s) changed under us")


def mark_undone(conn: Connection, ids: Sequence[int]) -> None:
    """Mark redemptions undone; raises LostRace when another writer undid one of them first."""
    if not ids:
        return
    res = conn.execute(
        update(Redemption).where(Redemption.id.in_(ids), Redemption.undone.is_(False)).values(undone=True)
    )
    if res.rowcount != len(ids):
        raise LostRace("a redemption was undone concurrently")


def record(conn: Connection, rows: list[dict[str, Any]], audits: list[dict[str, Any]]) -> None:
    """Insert the batch's redemption rows (driver-level, the hot path) and its audit entries."""
    if rows:
        hotsql.insert_redemptions(conn, rows)
    if audits:
        conn.execute(insert(Audit), audits)
