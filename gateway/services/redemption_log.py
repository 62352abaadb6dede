# Reading the ledger: filtered lists of redemption decisions and their CSV export.
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Engine, func, select

from gateway.adapters.db.models import Redemption, Site

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


_COLS = [
    Redemption.id,
    Redemption.server_time,
    Redemption.device,
    Redemption.scan_id,
    Site.slug.label("site"),
    Redemption.gate,
    Redemption.code,
    Redemption.qty,
    Redemption.direction,
    Redemption.ok,
    Redemption.reason,
    Redemption.device_time,
    Redemption.op,
    Redemption.user,
    Redemption.undone,
    Redemption.ref_id,
]


def _query(f: RedemptionFilter, sites: frozenset[str] | None = None) -> Any:
    """`sites`: the caller may only see these sites' records (None = every site)."""
    q = select(*_COLS).select_from(Redemption).outerjoin(Site, Site.id == Redemption.site_id)
    if sites is not None:
        q = q.where(Site.slug.in_(sorted(sites)))
    if f.device:
        q = q.where(Redemption.device == f.device)
    if f.code:
        q = q.where(Redemption.code == f.code)
    if f.user:
        q = q.where(Redemption.user == f.user)
    if f.reason:
        q = q.where(Redemption.reason == f.reason)
    if f.ok is not None:
        q = q.where(Redemption.ok == f.ok)
    if f.site:
        q = q.where(Site.slug == f.site)
    if f.since is not None:
        q = q.where(Redemption.server_time >= f.since)
    if f.until is not None:
        q = q.where(Redemption.server_time < f.until)
    return q


def list_redemptions(
    engine: Engine, f: RedemptionFilter, sites: frozenset[str] | None = None
) -> dict[str, Any]:
    q = _query(f, sites)
    with engine.connect() as c:
        total = c.execute(select(func.count()).select_from(q.subquery())).scalar_one()
        rows = c.execute(q.order_by(Redemption.id.desc()).limit(f.limit).offset(f.offset)).all()
    return {"total": total, "items": [dict(r._mapping) for r in rows]}


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


def export_csv(engine: Engine, f: RedemptionFilter, sites: frozenset[str] | None = None) -> Iterator[str]:
    """Stream the whole filtered ledger as CSV (no limit), oldest first, in pages."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_HEADER)
    yield buf.getvalue()
    last_id = 0
    while True:
        with engine.connect() as c:
            rows = c.execute(
                _query(f, sites).where(Redemption.id > last_id).order_by(Redemption.id).limit(2000)
            ).all()
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
