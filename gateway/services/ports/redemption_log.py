# The redemption log's repository port: filtered pages of the ledger's decisions, and their export.
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

Criteria = Mapping[str, Any]
"""What a listing is filtered by (each optional): device, user, code, reason, site (equal when set),
ok (True/False), since and until (Unix seconds, [since, until))."""


class LogLine(Protocol):
    """One decision as the export writes it (read-only)."""

    id: int
    server_time: float
    device: str
    scan_id: str
    site: str | None
    gate: str
    code: str
    qty: int
    direction: str
    ok: bool
    reason: str
    device_time: float | None
    op: str
    user: str | None
    undone: bool
    ref_id: int | None


class RedemptionLog(Protocol):
    """`sites`: only these sites' decisions (None: every site's, also those without a site)."""

    def page(
        self, where: Criteria, sites: frozenset[str] | None, limit: int, offset: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """(how many match in all, the page of them newest first: LogLine's fields as a dict)."""
        ...

    def after(
        self, where: Criteria, sites: frozenset[str] | None, last_id: int, limit: int
    ) -> Sequence[LogLine]:
        """Up to `limit` matching decisions with an id above `last_id`, oldest first."""
        ...
