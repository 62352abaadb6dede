# Order and site management: create/import orders (JSON, CSV with per-row errors), look them up.
from __future__ import annotations

import csv
import io
import secrets
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import Connection, Engine, insert, select

from gateway.contract import Code
from gateway.db.engine import writer
from gateway.db.models import Order, Site
from gateway.errors import Conflict, NotFound, ValidationFailed

# Crockford-style alphabet without look-alikes: codes are read aloud and typed from paper.
_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"


def new_code(prefix: str = "HX") -> str:
    """An unguessable order code: 20 symbols of a 32-letter alphabet = 100 bits of randomness."""
    return prefix + "-" + "".join(secrets.choice(_ALPHABET) for _ in range(20))


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Code | None = None
    title: str = Field(min_length=1, max_length=200)
    quantity: int = Field(default=1, ge=1, le=1_000_000_000)
    site: str | None = Field(default=None, max_length=32)
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    external_ref: str | None = Field(default=None, max_length=120)

    @field_validator("valid_until")
    @classmethod
    def _after_start(cls, v: datetime | None, info: Any) -> datetime | None:
        start = info.data.get("valid_from")
        if v is not None and start is not None and _ts(v) <= _ts(start):
            raise ValueError("valid_until must be after valid_from")
        return v


class SiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    name: str = Field(min_length=1, max_length=120)
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _known_tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown time zone {v!r}") from err
        return v


def _ts(d: datetime) -> float:
    # A time without zone is taken as UTC: explicit offsets are the documented way to say otherwise.
    return d.timestamp() if d.tzinfo else d.replace(tzinfo=ZoneInfo("UTC")).timestamp()


def site_ids(conn: Connection) -> dict[str, int]:
    return {slug: sid for slug, sid in conn.execute(select(Site.slug, Site.id))}


def create_site(engine: Engine, site: SiteIn) -> dict[str, Any]:
    with engine.connect() as c, writer(c).begin():
        if c.execute(select(Site.id).where(Site.slug == site.slug)).first():
            raise Conflict(f"site {site.slug!r} exists", slug=site.slug)
        c.execute(
            insert(Site).values(
                slug=site.slug, name=site.name, timezone=site.timezone, created_at=time.time()
            )
        )
    return site.model_dump()


def list_sites(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as c:
        rows = c.execute(select(Site.slug, Site.name, Site.timezone).order_by(Site.slug)).all()
    return [{"slug": r.slug, "name": r.name, "timezone": r.timezone} for r in rows]


def _row(o: OrderIn, sites: dict[str, int], now: float) -> dict[str, Any]:
    if o.site is not None and o.site not in sites:
        raise ValidationFailed(f"unknown site {o.site!r}", field="site")
    return {
        "code": o.code or new_code(),
        "title": o.title,
        "quantity": o.quantity,
        "used": 0,
        "refunded": 0,
        "status": "active",
        "site_id": sites[o.site] if o.site is not None else None,
        "valid_from": _ts(o.valid_from) if o.valid_from else None,
        "valid_until": _ts(o.valid_until) if o.valid_until else None,
        "external_ref": o.external_ref,
        "created_at": now,
    }


def create_orders(engine: Engine, orders: list[OrderIn]) -> list[str]:
    """All or nothing: returns the codes, or raises with the first problem and creates none."""
    now = time.time()
    with engine.connect() as c, writer(c).begin():
        sites = site_ids(c)
        rows = [_row(o, sites, now) for o in orders]
        codes = [r["code"] for r in rows]
        if len(set(codes)) != len(codes):
            raise Conflict("the same code appears twice in the request")
        clash = c.execute(select(Order.code).where(Order.code.in_(codes))).first()
        if clash is not None:
            raise Conflict(f"order code {clash.code!r} already exists", code=clash.code)
        for i in range(0, len(rows), 500):
            c.execute(insert(Order), rows[i : i + 500])
    return codes


CSV_COLUMNS = ["code", "title", "quantity", "site", "valid_from", "valid_until", "external_ref"]


def import_csv(engine: Engine, text: str) -> dict[str, Any]:
    """Import what is valid, report every bad row (line number, field, message); creates nothing twice."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "title" not in reader.fieldnames:
        raise ValidationFailed("CSV needs a header row with at least a 'title' column", columns=CSV_COLUMNS)
    unknown = [f for f in reader.fieldnames if f not in CSV_COLUMNS]
    if unknown:
        raise ValidationFailed(f"unknown CSV columns: {', '.join(unknown)}", columns=CSV_COLUMNS)
    now = time.time()
    errors: list[dict[str, Any]] = []
    good: list[dict[str, Any]] = []
    with engine.connect() as c, writer(c).begin():
        sites = site_ids(c)
        seen: set[str] = set()
        for line, rec in enumerate(reader, start=2):
            data = {k: v for k, v in rec.items() if v not in (None, "")}
            try:
                row = _row(OrderIn.model_validate(data), sites, now)
            except ValidationError as err:
                e = err.errors()[0]
                errors.append({"line": line, "field": ".".join(map(str, e["loc"])), "error": e["msg"]})
                continue
            except ValidationFailed as err:
                errors.append(
                    {"line": line, "field": str(err.details.get("field", "")), "error": err.message}
                )
                continue
            if row["code"] in seen:
                errors.append({"line": line, "field": "code", "error": "duplicate code in file"})
                continue
            seen.add(row["code"])
            good.append(row)
        existing = (
            {r[0] for r in c.execute(select(Order.code).where(Order.code.in_(list(seen))))} if seen else set()
        )
        fresh = [r for r in good if r["code"] not in existing]
        skipped = len(good) - len(fresh)
        for i in range(0, len(fresh), 500):
            c.execute(insert(Order), fresh[i : i + 500])
    return {"created": len(fresh), "already_existed": skipped, "errors": errors}


def order_view(engine: Engine, code: str) -> dict[str, Any]:
    with engine.connect() as c:
        o = c.execute(select(*Order.__table__.c).where(Order.code == code)).first()
        if o is None:
            raise NotFound(f"no order with code {code!r}", code=code)
        site = c.execute(select(Site.slug).where(Site.id == o.site_id)).scalar() if o.site_id else None
    return {
        "code": o.code,
        "title": o.title,
        "quantity": o.quantity,
        "used": o.used,
        "refunded": o.refunded,
        "left": max(0, o.quantity - o.used - o.refunded),
        "status": o.status,
        "site": site,
        "valid_from": o.valid_from,
        "valid_until": o.valid_until,
        "last_used_at": o.last_used_at,
        "last_used_gate": o.last_used_gate,
        "external_ref": o.external_ref,
    }
