# Order and site management: create/import orders (JSON, CSV with per-row errors), look them up.
from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Callable
from typing import Any

from pydantic import Field, ValidationError

from gateway.domain.catalog import LiveProduct
from gateway.domain.codes import format_short, new_code, new_short_code, normalize_short
from gateway.domain.errors import Conflict, NotFound, ValidationFailed
from gateway.services.catalog import Kind, RulesIn, ts
from gateway.services.inputs import DEFAULT_TIMEZONE, Code, IsoDateTime, StrictIn
from gateway.services.ports.database import Database
from gateway.services.sites import SiteIn, create_site, list_sites

__all__ = [
    "OrderIn",
    "SiteIn",
    "create_orders",
    "create_site",
    "import_csv",
    "list_sites",
    "order_view",
]


class OrderIn(StrictIn):
    """An order line as a shop sends it. With `product`, missing fields come from the product's
    snapshot; `quantity` is units (tickets), uses (packs) or cents (value vouchers). Date-times are
    ISO-8601 text; a naive one is local time at the order's site (the gateway's TIMEZONE without one)."""

    code: Code | None = None
    title: str | None = Field(default=None, min_length=1, max_length=200)
    product: str | None = Field(default=None, max_length=64, description="product sku to copy rules from")
    kind: Kind | None = None
    quantity: int | None = Field(default=None, ge=1, le=1_000_000_000)
    site: str | None = Field(default=None, max_length=32)
    rules: RulesIn | None = None
    valid_from: IsoDateTime | None = None
    valid_until: IsoDateTime | None = None
    paid_at: IsoDateTime | None = None
    external_ref: str | None = Field(default=None, max_length=120)


def _row(
    o: OrderIn,
    sites: dict[str, int],
    products: dict[str, LiveProduct],
    now: float,
    key: bytes | None,
    zone: str = DEFAULT_TIMEZONE,
) -> dict[str, Any]:
    """`zone`: the time zone of the order's site (or the gateway's TIMEZONE for orders without one)."""
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
    paid = ts(o.paid_at, zone) or now
    valid_from = ts(o.valid_from, zone) if o.valid_from else (prod.valid_from if prod is not None else None)
    valid_until = (
        ts(o.valid_until, zone) if o.valid_until else (prod.valid_until if prod is not None else None)
    )
    if valid_until is None and prod is not None and prod.valid_days:
        valid_until = paid + prod.valid_days * 86400
    if valid_from is not None and valid_until is not None and valid_until <= valid_from:
        raise ValidationFailed("valid_until must be after valid_from", field="valid_until")
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


def _check_sites(
    check_site: Callable[[str | None], None] | None, o: OrderIn, row: dict[str, Any], sites: dict[str, int]
) -> None:
    """Every site where the order will be valid: its own and those of its rules (given or copied from a
    product), since a decision obeys `rules.sites` first. `check_site` raises for one the caller may
    not act on."""
    if check_site is None:
        return
    check_site(o.site)
    slugs = {i: slug for slug, i in sites.items()}
    for site_id in (row["rules"] or {}).get("sites") or []:
        check_site(slugs.get(site_id))


def create_orders(
    db: Database,
    orders: list[OrderIn],
    key: bytes | None = None,
    tz: str = DEFAULT_TIMEZONE,
    check_site: Callable[[str | None], None] | None = None,
    taken: dict[str, str | None] | None = None,
) -> list[str]:
    """All or nothing: returns the codes, or raises with the first problem and creates none.

    `tz` is the gateway's TIMEZONE: naive date-times of orders without a site are read in it.
    `check_site` raises for a site the caller may not act on (the order's own or one of its rules)."""
    now = time.time()
    with db.write() as tx:
        sites = tx.sites.ids()
        zones = tx.sites.zones()
        products = tx.products.live({o.product for o in orders if o.product})
        rows = [_row(o, sites, products, now, key, zones.get(o.site or "", tz)) for o in orders]
        for o, row in zip(orders, rows, strict=True):
            _check_sites(check_site, o, row, sites)
        codes = [r["code"] for r in rows]
        if len(set(codes)) != len(codes):
            raise Conflict("the same code appears twice in the request")
        clash = tx.orders.taken(codes)
        if clash:
            if taken is not None:
                taken.update(clash)
            first = sorted(clash)[0]
            raise Conflict(f"order code {first!r} already exists", code=first)
        tx.orders.insert(rows)
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


# CSV cells are text; only whole numbers become numbers (strictly: "1.0", " 1" or "true" stay text and
# are refused like over JSON).
_WHOLE = re.compile(r"^[0-9]{1,10}$")
NUMERIC_COLUMNS = ("quantity",)


def _csv_record(rec: dict[str, Any]) -> dict[str, Any]:
    data = {k: v for k, v in rec.items() if v not in (None, "")}
    for k in NUMERIC_COLUMNS:
        if isinstance(data.get(k), str) and _WHOLE.match(data[k]):
            data[k] = int(data[k])
    return data


def import_csv(
    db: Database,
    text: str,
    key: bytes | None = None,
    tz: str = DEFAULT_TIMEZONE,
    check_site: Callable[[str | None], None] | None = None,
    taken: dict[str, str | None] | None = None,
) -> dict[str, Any]:
    """Import what is valid, report every bad row (line number, field, message); creates nothing twice.

    Naive date-times are local at the row's site (`tz`, the gateway's TIMEZONE, without one).
    `check_site` raises for a site the caller may not act on: then nothing of the file is imported."""
    reader = csv.DictReader(io.StringIO(text))
    try:  # read it all first: a broken file (a NUL byte, a runaway quoted cell) is refused as a whole
        fieldnames = reader.fieldnames
        records = list(reader)
    except csv.Error as err:
        raise ValidationFailed(f"the CSV cannot be read: {err}", line=reader.line_num) from None
    if fieldnames is None or not ({"title", "product"} & set(fieldnames)):
        raise ValidationFailed(
            "CSV needs a header row with a 'title' or 'product' column", columns=CSV_COLUMNS
        )
    unknown = [f for f in fieldnames if f not in CSV_COLUMNS]
    if unknown:
        raise ValidationFailed(f"unknown CSV columns: {', '.join(unknown)}", columns=CSV_COLUMNS)
    now = time.time()
    errors: list[dict[str, Any]] = []
    good: list[dict[str, Any]] = []
    with db.write() as tx:
        sites = tx.sites.ids()
        zones = tx.sites.zones()
        products = tx.products.live()
        seen: set[str] = set()
        for line, rec in enumerate(records, start=2):
            if None in rec:  # csv.DictReader puts cells beyond the header under the key None
                errors.append({"line": line, "field": "", "error": "more cells than header columns"})
                continue
            data = _csv_record(rec)
            try:
                o = OrderIn.model_validate(data)
                row = _row(o, sites, products, now, key, zones.get(o.site or "", tz))
            except ValidationError as err:
                e = err.errors()[0]
                errors.append({"line": line, "field": ".".join(map(str, e["loc"])), "error": e["msg"]})
                continue
            except ValidationFailed as err:
                errors.append(
                    {"line": line, "field": str(err.details.get("field", "")), "error": err.message}
                )
                continue
            _check_sites(
                check_site, o, row, sites
            )  # raises: the transaction is rolled back, nothing imported
            if row["code"] in seen:
                errors.append({"line": line, "field": "code", "error": "duplicate code in file"})
                continue
            seen.add(row["code"])
            good.append(row)
        existing = tx.orders.taken(list(seen)) if seen else {}
        if taken is not None:
            taken.update(existing)
        fresh = [r for r in good if r["code"] not in existing]
        skipped = len(good) - len(fresh)
        tx.orders.insert(fresh)
    return {"created": len(fresh), "already_existed": skipped, "errors": errors}


def order_view(db: Database, code: str) -> dict[str, Any]:
    with db.read() as tx:
        o = tx.orders.find(code, normalize_short(code))
    if o is None:
        raise NotFound(f"no order with code {code!r}", code=code)
    site = o["site_slug"]
    return {
        "code": o["code"],
        "title": o["title"],
        "quantity": o["quantity"],
        "used": o["used"],
        "refunded": o["refunded"],
        "left": max(0, o["quantity"] - o["used"] - o["refunded"]),
        "status": o["status"],
        "site": site,
        "valid_from": o["valid_from"],
        "valid_until": o["valid_until"],
        "last_used_at": o["last_used_at"],
        "last_used_gate": o["last_used_gate"],
        "external_ref": o["external_ref"],
        "kind": o["kind"],
        "short_code": format_short(o["short_code"]) if o["short_code"] else None,
        "rules": o["rules"],
        "inside": o["inside"],
        "paid_at": o["paid_at"],
    }
