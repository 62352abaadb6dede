# The reports' repository port: the ledger lines a report counts, the orders a settlement dates.
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, TypeAlias

Visible: TypeAlias = tuple[str | None, frozenset[str] | None, bool]
"""Which sites' rows a report reads: (the one site asked for or None, the sites one may see or None for
all, whether rows without a site are seen too)."""


class LedgerLine(Protocol):
    """One ledger row as the reports read it, with its site's slug and zone and its product's title
    (read-only: a record as the database driver hands it over, no copy per row)."""

    server_time: float
    gate: str
    device: str
    user: str | None
    op: str
    ok: bool
    undone: bool
    qty: int
    reason: str
    order_id: int | None
    site: str | None
    tz: str | None
    product_title: str | None
    order_title: str | None


class SoldOrder(Protocol):
    """One order as the settlement reads it, with its site's slug and zone (read-only)."""

    id: int
    code: str
    title: str
    kind: str
    quantity: int
    refunded: int
    status: str
    paid_at: float | None
    created_at: float
    site: str | None
    tz: str | None


class Reports(Protocol):
    """Bounds are instants (Unix seconds), None for open; `visible` cuts every read to the sites seen."""

    def lines(self, since: float | None, until: float | None, visible: Visible) -> Iterator[LedgerLine]:
        """The ledger rows of [since, until) in the order they were written, streamed in pages (a
        report may cover millions of rows)."""
        ...

    def sold(self, since: float | None, until: float | None, visible: Visible) -> Sequence[SoldOrder]:
        """Orders paid for (not `unpaid`) whose payment time (paid_at, else created_at) lies in
        [since, until), by id."""
        ...

    def standing_units(self, order_ids: Sequence[int]) -> dict[int, list[tuple[float, int]]]:
        """order id → (time, units) of each of its redemptions that still stands (not annulled or
        reverted, not an exit); orders without one are left out."""
        ...
