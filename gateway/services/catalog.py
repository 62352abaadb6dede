# The product catalog and the rules orders copy from it at sale time (a snapshot, never a live link).
from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator

from gateway.domain.errors import Conflict, NotFound, ValidationFailed
from gateway.domain.validity import parse_hhmm
from gateway.services.inputs import DEFAULT_TIMEZONE, IsoDateTime, StrictIn, to_ts
from gateway.services.ports.database import Database

Kind = Literal["ticket", "pack", "value"]
Slug = Annotated[str, StringConstraints(min_length=1, max_length=32)]
Gate = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class RulesIn(StrictIn):
    """Redemption rules as people write them; `snapshot` turns them into what the pure rules read."""

    sites: list[Slug] | None = Field(
        default=None, max_length=100, description="site slugs where it may be redeemed (default: its site)"
    )
    gates: list[Gate] | None = Field(
        default=None, max_length=100, description="gate names where it may be redeemed"
    )
    days: str | None = Field(
        default=None, pattern=r"^[01]{7}$", description="Mon..Sun, e.g. 1111100 = weekdays"
    )
    hours: str | None = Field(
        default=None,
        pattern=r"^[0-9]{2}:[0-9]{2}-[0-9]{2}:[0-9]{2}$",
        description="HH:MM-HH:MM local; may run past midnight",
    )
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


def ts(d: datetime | None, tz: str = "UTC") -> float | None:
    """Unix seconds; a naive `d` is wall-clock time in `tz` (callers pass the site's zone)."""
    return to_ts(d, tz)


class ProductIn(StrictIn):
    sku: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    title: str = Field(min_length=1, max_length=200)
    kind: Kind = "ticket"
    quantity: int = Field(default=1, ge=1, le=1_000_000_000, description="units, uses, or cents for value")
    rules: RulesIn | None = None
    sale_from: IsoDateTime | None = Field(default=None, description="ISO-8601; naive = local time")
    sale_until: IsoDateTime | None = None
    valid_from: IsoDateTime | None = None
    valid_until: IsoDateTime | None = None
    valid_days: int | None = Field(default=None, ge=1, le=3660, description="use within N days of payment")


def _times(p: ProductIn, tz: str) -> dict[str, float | None]:
    """The product's times as Unix seconds (naive ones in `tz`), each range checked once converted."""
    out = {k: ts(getattr(p, k), tz) for k in ("sale_from", "sale_until", "valid_from", "valid_until")}
    for start, end in (("sale_from", "sale_until"), ("valid_from", "valid_until")):
        a, b = out[start], out[end]
        if a is not None and b is not None and b <= a:
            raise ValidationFailed(f"{end} must be after {start}", field=end)
    return out


def product_zone(db: Database, p: ProductIn, default_tz: str) -> str:
    """The zone a product's naive times are read in: its sites' zone when `rules.sites` names sites that
    share one zone, otherwise the gateway's TIMEZONE (a product belongs to no single site)."""
    if p.rules is None or not p.rules.sites:
        return default_tz
    with db.read() as tx:
        by_slug = tx.sites.zones()
    zones = {by_slug[s] for s in p.rules.sites if s in by_slug}
    return zones.pop() if len(zones) == 1 else default_tz


def _row(p: ProductIn, site_ids: dict[str, int], tz: str) -> dict[str, Any]:
    """The columns a product's definition sets (on create and on update alike)."""
    return {
        "title": p.title,
        "kind": p.kind,
        "quantity": p.quantity,
        "rules": p.rules.snapshot(site_ids) if p.rules else None,
        "valid_days": p.valid_days,
        **_times(p, tz),
    }


def create_product(
    db: Database, p: ProductIn, site_ids: dict[str, int], tz: str = DEFAULT_TIMEZONE
) -> dict[str, Any]:
    row = _row(p, site_ids, tz)
    new = {"sku": p.sku, **row, "deleted": False, "created_at": time.time()}
    with db.write() as tx:
        if not tx.products.add(new):
            raise Conflict(f"product {p.sku!r} exists", sku=p.sku)
    return {**p.model_dump(mode="json"), "rules": row["rules"]}


def delete_product(db: Database, sku: str) -> None:
    """Products are retired, not erased: sold orders keep their own snapshot either way."""
    with db.write() as tx:
        if not tx.products.retire(sku):
            raise NotFound(f"no product {sku!r}", sku=sku)


def update_product(
    db: Database, p: ProductIn, site_ids: dict[str, int], tz: str = DEFAULT_TIMEZONE
) -> dict[str, Any]:
    row = _row(p, site_ids, tz)
    with db.write() as tx:
        if not tx.products.change(p.sku, row):
            raise NotFound(f"no product {p.sku!r}", sku=p.sku)
    return {**p.model_dump(mode="json"), "rules": row["rules"]}


def list_products(db: Database) -> list[dict[str, Any]]:
    with db.read() as tx:
        return tx.products.listing()


def product_sites(db: Database, sku: str) -> list[str] | None:
    """The slugs a live product is sold for ([] = everywhere), or None when there is no such product."""
    with db.read() as tx:
        ids = tx.products.rule_site_ids(sku)
        if ids is None:
            return None
        if not ids:
            return []
        slugs = {i: slug for slug, i in tx.sites.ids().items()}
    return sorted(slugs[i] for i in ids if i in slugs)
