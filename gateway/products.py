# The product catalog and the rules orders copy from it at sale time (a snapshot, never a live link).
from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import Connection, Engine, insert, select, update

from gateway.db.engine import writer
from gateway.db.models import Product
from gateway.errors import Conflict, NotFound, ValidationFailed
from gateway.validity import parse_hhmm

Kind = Literal["ticket", "pack", "value"]


class RulesIn(BaseModel):
    """Redemption rules as people write them; `snapshot` turns them into what the pure rules read."""

    model_config = ConfigDict(extra="forbid")

    sites: list[str] | None = Field(
        default=None, description="site slugs where it may be redeemed (default: its site)"
    )
    gates: list[str] | None = Field(default=None, description="gate names where it may be redeemed")
    days: str | None = Field(
        default=None, pattern=r"^[01]{7}$", description="Mon..Sun, e.g. 1111100 = weekdays"
    )
    hours: str | None = Field(default=None, description="HH:MM-HH:MM local; may run past midnight")
    min_interval_s: int | None = Field(
        default=None, ge=1, le=366 * 86400, description="packs: time between uses"
    )
    per_day: int | None = Field(default=None, ge=1, le=1000, description="packs: most units per local day")
    passback: bool = Field(default=False, description="entry/exit: inside can't enter again until exit")
    reentry: bool = Field(default=False, description="re-entry the same day without using a unit")

    @field_validator("hours")
    @classmethod
    def _hours(cls, v: str | None) -> str | None:
        if v is not None:
            start, sep, end = v.partition("-")
            if not sep or parse_hhmm(start) == parse_hhmm(end):
                raise ValueError("hours must be HH:MM-HH:MM with different ends")
        return v

    def snapshot(self, site_ids: dict[str, int]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.sites:
            unknown = [s for s in self.sites if s not in site_ids]
            if unknown:
                raise ValidationFailed(f"unknown site(s): {', '.join(unknown)}", field="rules.sites")
            out["sites"] = sorted(site_ids[s] for s in self.sites)
        if self.gates:
            out["gates"] = self.gates
        if self.days:
            out["days"] = self.days
        if self.hours:
            a, _, b = self.hours.partition("-")
            out["hours"] = [parse_hhmm(a), parse_hhmm(b)]
        for key in ("min_interval_s", "per_day"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.passback:
            out["passback"] = True
        if self.reentry:
            out["reentry"] = True
        return out


def ts(d: datetime | None) -> float | None:
    # A time without zone is taken as UTC: explicit offsets are the documented way to say otherwise.
    if d is None:
        return None
    return d.timestamp() if d.tzinfo else d.replace(tzinfo=ZoneInfo("UTC")).timestamp()


class ProductIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    title: str = Field(min_length=1, max_length=200)
    kind: Kind = "ticket"
    quantity: int = Field(default=1, ge=1, le=1_000_000_000, description="units, uses, or cents for value")
    rules: RulesIn | None = None
    sale_from: datetime | None = None
    sale_until: datetime | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    valid_days: int | None = Field(default=None, ge=1, le=3660, description="use within N days of payment")


def create_product(engine: Engine, p: ProductIn, site_ids: dict[str, int]) -> dict[str, Any]:
    rules = p.rules.snapshot(site_ids) if p.rules else None
    with engine.connect() as c, writer(c).begin():
        if c.execute(select(Product.id).where(Product.sku == p.sku)).first():
            raise Conflict(f"product {p.sku!r} exists", sku=p.sku)
        c.execute(
            insert(Product).values(
                sku=p.sku,
                title=p.title,
                kind=p.kind,
                quantity=p.quantity,
                rules=rules,
                sale_from=ts(p.sale_from),
                sale_until=ts(p.sale_until),
                valid_from=ts(p.valid_from),
                valid_until=ts(p.valid_until),
                valid_days=p.valid_days,
                deleted=False,
                created_at=time.time(),
            )
        )
    return {**p.model_dump(mode="json"), "rules": rules}


def delete_product(engine: Engine, sku: str) -> None:
    """Products are retired, not erased: sold orders keep their own snapshot either way."""
    with engine.connect() as c, writer(c).begin():
        res = c.execute(
            update(Product).where(Product.sku == sku, Product.deleted.is_(False)).values(deleted=True)
        )
        if res.rowcount == 0:
            raise NotFound(f"no product {sku!r}", sku=sku)


def update_product(engine: Engine, p: ProductIn, site_ids: dict[str, int]) -> dict[str, Any]:
    rules = p.rules.snapshot(site_ids) if p.rules else None
    with engine.connect() as c, writer(c).begin():
        res = c.execute(
            update(Product)
            .where(Product.sku == p.sku, Product.deleted.is_(False))
            .values(
                title=p.title,
                kind=p.kind,
                quantity=p.quantity,
                rules=rules,
                sale_from=ts(p.sale_from),
                sale_until=ts(p.sale_until),
                valid_from=ts(p.valid_from),
                valid_until=ts(p.valid_until),
                valid_days=p.valid_days,
            )
        )
        if res.rowcount == 0:
            raise NotFound(f"no product {p.sku!r}", sku=p.sku)
    return {**p.model_dump(mode="json"), "rules": rules}


def list_products(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as c:
        rows = c.execute(
            select(*Product.__table__.c).where(Product.deleted.is_(False)).order_by(Product.sku)
        ).all()
    return [dict(r._mapping) for r in rows]


def products_by_sku(conn: Connection, skus: set[str]) -> dict[str, Any]:
    if not skus:
        return {}
    rows = conn.execute(
        select(*Product.__table__.c).where(Product.sku.in_(skus), Product.deleted.is_(False))
    ).all()
    return {r.sku: r for r in rows}
