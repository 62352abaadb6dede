# Reading the ledger: filtered lists of redemption decisions and their CSV export.
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from gateway.services.ports.database import Database

# Upper bounds keep every value inside what SQLite and PostgreSQL integers and floats hold (a huge
# offset once overflowed into a 500); times are Unix seconds before the year 5000.
MAX_OFFSET = 1_000_000_000
MAX_TIME = 95_617_584_000.0


class RedemptionFilter(BaseModel):
    """Query parameters (text in the URL, so numbers are parsed; each is bounded)."""

    device: str | None = Field(default=None, max_length=64)
    user: str | None = Field(default=None, max_length=64)
    code: str | None = Field(default=None, max_length=128)
    reason: str | None = Field(default=None, max_length=32)
    ok: bool | None = None
    site: str | None = Field(default=None, max_length=32)
    since: float | None = Field(
        default=None, ge=0, le=MAX_TIME, allow_inf_nan=False, description="Unix seconds"
    )
    until: float | None = Field(
        default=None, ge=0, le=MAX_TIME, allow_inf_nan=False, description="Unix seconds"
    )
    limit: int = Field(default=100, ge=1, le=10_000)
    offset: int = Field(default=0, ge=0, le=MAX_OFFSET)

    def criteria(self) -> dict[str, Any]:
        """What the ledger is filtered by (services/ports/redemption_log.py: Criteria)."""
        return self.model_dump(exclude={"limit", "offset"})


def list_redemptions(
    db: Database, f: RedemptionFilter, sites: frozenset[str] | None = None
) -> dict[str, Any]:
    """`sites`: the caller may only see these sites' records (None = every site)."""
    with db.read() as tx:
        total, items = tx.redemption_log.page(f.criteria(), sites, f.limit, f.offset)
    return {"total": total, "items": items}


CSV_HEADER = [
    "id",
    "server_time_utc",
    "device",
    "scan_id",
    "site",
    "gate",
    "code",
    "qty",
    "direction",
    "ok",
    "reason",
    "device_time",
    "op",
    "user",
    "undone",
    "ref_id",
]


def export_csv(db: Database, f: RedemptionFilter, sites: frozenset[str] | None = None) -> Iterator[str]:
    """Stream the whole filtered ledger as CSV (no limit), oldest first, in pages."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_HEADER)
    yield buf.getvalue()
    last_id = 0
    where = f.criteria()
    while True:
        with db.read() as tx:  # one short transaction per page: a slow download holds no snapshot
            rows = tx.redemption_log.after(where, sites, last_id, 2000)
        if not rows:
            return
        buf = io.StringIO()
        w = csv.writer(buf)
        for r in rows:
            when = datetime.fromtimestamp(r.server_time, UTC).isoformat(timespec="milliseconds")
            w.writerow(
                [
                    r.id,
                    when,
                    r.device,
                    r.scan_id,
                    r.site or "",
                    r.gate,
                    r.code,
                    r.qty,
                    r.direction,
                    int(r.ok),
                    r.reason,
                    r.device_time or "",
                    r.op,
                    r.user or "",
                    int(r.undone),
                    r.ref_id or "",
                ]
            )
        last_id = rows[-1].id
        yield buf.getvalue()
