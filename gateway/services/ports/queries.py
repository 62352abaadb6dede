# The console queries' repository port: today's counters, recent scans, order search, an order's lines.
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

Seen = tuple[list[int] | None, bool]
"""The rows one may see: (the ids of one's sites or None for every row, also rows without a site)."""

Since = tuple[list[int] | None, float]
"""Rows of these sites (None: rows without a site) from this instant on."""


class Queries(Protocol):
    def sites(self) -> list[tuple[int, str, str]]:
        """(id, slug, zone name) of every site."""
        ...

    def gate_counts(self, since: Sequence[Since], until: float, seen: Seen) -> list[dict[str, Any]]:
        """Per (site_id, gate), by both: `ok` redemptions that still stand and their `units`, and
        `denied` refusals, of the rows from any of `since`'s starts up to and including `until`."""
        ...

    def recent(self, limit: int, device: str | None, seen: Seen) -> list[dict[str, Any]]:
        """The newest decisions (of `device`, when named), newest first: t, device, site (slug), gate,
        code, qty, ok, reason, verdict (its JSON text), user."""
        ...

    def find_orders(
        self, fields: Sequence[str], text: str, short: str, status: str, limit: int, seen: Seen
    ) -> list[dict[str, Any]]:
        """Newest first, the `fields` of orders whose code, title or external ref contains `text` (taken
        literally) or whose short code is `short` (every order when `text` is empty), of `status` when
        given; `seen` reads the order's own site."""
        ...

    def history(self, code: str, limit: int) -> list[dict[str, Any]]:
        """The ledger lines of an order's code, newest first: id, server_time, device, site (slug), gate,
        qty, direction, ok, reason, op, undone, user."""
        ...

    def redemption_site(self, redemption_id: int) -> tuple[bool, str | None]:
        """Whether the redemption exists, and the slug of its site."""
        ...

    def redemption_code(self, redemption_id: int) -> str | None: ...
