# The ledger's repository port: orders, recorded decisions and their undo, in the caller's transaction.
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from gateway.domain.decisions import OrderView
from gateway.domain.order_state import Use


class Recorded(Protocol):
    """A recorded redemption with what an undo needs (read-only; domain/order_state.py reads it)."""

    idem_key: str
    id: int
    order_id: int | None
    qty: int
    ok: bool
    op: str
    undone: bool
    server_time: float
    direction: str
    inside_delta: int
    day_key: str | None
    site_id: int | None
    code: str
    gate: str


class Ledger(Protocol):
    """Every method takes the whole batch where a batch has several (one round trip for all)."""

    @property
    def failures(self) -> tuple[type[Exception], ...]:
        """What the store raises when it fails itself (never a request's own fault)."""
        ...

    def orders(self, codes: set[str], ids: set[int] | None = None) -> dict[str, OrderView]:
        """Orders by code (a short manual-entry code finds its order too; keys are what was asked for),
        and by id (keyed by their code)."""
        ...

    def order(self, order_id: int, *, lock: bool = False) -> OrderView | None:
        """The order as it is now (committed by others since our read, plus our own changes);
        `lock` holds its row until the transaction ends (an adjustment's read-modify-write)."""
        ...

    def order_by_code(self, code: str, *, lock: bool = False) -> OrderView | None:
        """The order whose code is exactly `code`; `lock` as in `order`."""
        ...

    def verdicts(self, keys: Sequence[str]) -> dict[str, tuple[str, str | None]]:
        """key → (stored verdict JSON, request fingerprint) for the keys decided before."""
        ...

    def recorded(self, keys: Sequence[str]) -> dict[str, Recorded]:
        """key → the recorded redemption, for the keys recorded."""
        ...

    def recorded_id(self, redemption_id: int) -> Recorded | None: ...

    def moves_after(self, order_id: int, redemption_id: int) -> list[tuple[int, str, int | None]]:
        """(units moved inside, op, the redemption it undid) of the order's lines after
        `redemption_id` that moved units in or out, in the order they were written."""
        ...

    def last_use(self, order_id: int, not_ids: Sequence[int]) -> tuple[float | None, str | None]:
        """(time, gate) of the order's latest entry that used units and still stands, leaving out the
        redemptions `not_ids`; (None, None) when there is none."""
        ...

    def apply_use(self, u: Use, expected: OrderView) -> OrderView | None:
        """Apply a decided change with one conditional update: the order after it (`expected` where the
        row cannot have moved since our read), or None when a condition no longer holds."""
        ...

    def write_order(self, new: OrderView, version: int) -> bool:
        """Write an order's counters (used, last use, day, inside) if its version is still `version`,
        bumping it; False when another writer changed it first."""
        ...

    def undo_once(self, redemption_id: int) -> bool:
        """Mark one redemption undone unless another writer undid it first (then False)."""
        ...

    def record(self, rows: list[dict[str, Any]], audits: list[dict[str, Any]]) -> None:
        """Insert redemption rows (all of the ledger's fields, hotsql.REDEMPTION_FIELDS) and audit
        entries (at, actor, action, order_id, redemption_id, units, reason)."""
        ...

    def refund(self, order_id: int, version: int, refunded: int, status: str) -> bool:
        """Set the refunded units and status if the version is still `version`; False otherwise."""
        ...

    def cancel(self, order_id: int, version: int) -> bool:
        """Cancel the order if its version is still `version`; False otherwise."""
        ...

    def site_zone(self, site_id: int | None) -> str | None:
        """The zone name of the site (None: no such site)."""
        ...
