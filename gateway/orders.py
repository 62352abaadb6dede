# Order and site management: create/import orders (JSON, CSV with per-row errors), look them up.
from __future__ import annotations

import csv
import io
import time
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import Engine, insert, or_, select

from gateway.codes import format_short, new_code, new_short_code, normalize_short
from gateway.contract import Code
from gateway.db.engine import writer
from gateway.db.models import Order, Product, Site
from gateway.errors import Conflict, NotFound, ValidationFailed
from gateway.products import Kind, RulesIn, products_by_sku, ts
from gateway.sites import SiteIn, create_site, list_sites, site_ids

__all__ = [
    "OrderIn",
    "SiteIn",
    "create_orders",
    "create_site",
    "import_csv",
    "list_sites",
    "order_view",
    "site_ids",
]


class OrderIn(BaseModel):
    """An order line as a shop sends it. With `product`, missing fields come from the product's
    snapshot; `quantity` is units (tickets), uses (packs) or cents (value vouchers)."""

    model_config = ConfigDict(extra="forbid")

    code: Code | None = None
    title: str | None = Field(default=None, min_length=1, max_length=200)
    product: str | None = Field(default=None, max_length=64, description="product sku to copy rules from")
    kind: Kind | None = None
    quantity: int | None = Field(default=None, ge=1, le=1_000_000_000)
    site: str | None = Field(default=None, max_length=32)
    rules: RulesIn | None = None
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    paid_at: datetime | None = None
    external_ref: str | None = Field(default=None, max_length=120)

    @field_validator("valid_until")
    @classmethod
    def _after_start(cls, v: datetime | None, info: Any) -> datetime | None:
        start = info.data.get("valid_from")
        if v is not None and start is not None and (ts(v) or 0) <= (ts(start) or 0):
            raise ValueError("valid_until must be after valid_from")
        return v


def _row(
    o: OrderIn, sites: dict[str, int], products: dict[str, Any], now: float, key: bytes | None
) -> dict[str, Any]:
    if o.site is not None and o.site not in sites:
        raise ValidationFailed(f"unknown site {o.site!r}", field="site")
    prod = None
    if o.product is not None:
        prod = products.get(o.product)
        if prod is None:
            raise ValidationFailed(f"unknown product {o.product!r}", field="product")
        if (
            prod.sale_from is not None
            and now < prod.sale_from
            or prod.sale_until is not None
            and now >= prod.sale_until
        ):
            raise ValidationFailed(f"product {o.product!r} is not on sale now", field="product")
    title = o.title or (prod.title if prod is not None else None)
    if not title:
        raise ValidationFailed("title: Field required (or name a product)", field="title")
    paid = ts(o.paid_at) or now
    valid_from = ts(o.valid_from) if o.valid_from else (prod.valid_from if prod is not None else None)
    valid_until = ts(o.valid_until) if o.valid_until else (prod.valid_until if prod is not None else None)
    if valid_until is None and prod is not None and prod.valid_days:
        valid_until = paid + prod.valid_days * 86400
    rules = (
        o.rules.snapshot(sites)
        if o.rules
        else (dict(prod.rules) if prod is not None and prod.rules else None)
    )
    return {
        "code": o.code or new_code(key),
        "short_code": new_short_code(),
        "title": title,
        "kind": o.kind or (prod.kind if prod is not None else "ticket"),
        "product_id": prod.id if prod is not None else None,
        "quantity": o.quantity or (prod.quantity if prod is not None else 1),
        "used": 0,
        "refunded": 0,
        "status": "active",
        "site_id": sites[o.site] if o.site is not None else None,
        "valid_from": valid_from,
        "valid_until": valid_until,
        "rules": rules or None,
        "paid_at": paid,
        "external_ref": o.external_ref,
        "created_at": now,
    }


def create_orders(engine: Engine, orders: list[OrderIn], key: bytes | None = None) -> list[str]:
    """All or nothing: returns the codes, or raises with the first problem and creates none."""
    now = time.time()
    with engine.connect() as c, writer(c).begin():
        sites = site_ids(c)
        products = products_by_sku(c, {o.product for o in orders if o.product})
        rows = [_row(o, sites, products, now, key) for o in orders]
        codes = [r["code"] for r in rows]
        if len(set(codes)) != len(codes):
            raise Conflict("the same code appears twice in the request")
        clash = c.execute(select(Order.code).where(Order.code.in_(codes))).first()
        if clash is not None:
            raise Conflict(f"order code {clash.code!r} already exists", code=clash.code)
        for i in range(0, len(rows), 500):
            c.execute(insert(Order), rows[i : i + 500])
    return codes


CSV_COLUMNS = [
    "code",
    "title",
    "product",
    "kind",
    "quantity",
    "site",
    "valid_from",
    "valid_until",
    "paid_at",
    "external_ref",
]


def import_csv(engine: Engine, text: str, key: bytes | None = None) -> dict[str, Any]:
    """Import what is valid, report every bad row (line number, field, message); creates nothing twice."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or not ({"title", "product"} & set(reader.fieldnames)):
        raise ValidationFailed(
            "CSV needs a header row with a 'title' or 'product' column", columns=CSV_COLUMNS
        )
    unknown = [f for f in reader.fieldnames if f not in CSV_COLUMNS]
    if unknown:
        raise ValidationFailed(f"unknown CSV columns: {', '.join(unknown)}", columns=CSV_COLUMNS)
    now = time.time()
    errors: list[dict[str, Any]] = []
    good: list[dict[str, Any]] = []
    with engine.connect() as c, writer(c).begin():
        sites = site_ids(c)
        products = products_by_sku(c, {r[0] for r in c.execute(select(Product.sku))})
        seen: set[str] = set()
        for line, rec in enumerate(reader, start=2):
            data = {k: v for k, v in rec.items() if v not in (None, "")}
            try:
                row = _row(OrderIn.model_validate(data), sites, products, now, key)
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
        o = c.execute(
            select(*Order.__table__.c).where(
                or_(Order.code == code, Order.short_code == normalize_short(code))
            )
        ).first()
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
        "kind": o.kind,
        "short_code": format_short(o.short_code) if o.short_code else None,
        "rules": o.rules,
        "inside": o.inside,
        "paid_at": o.paid_at,
    }
