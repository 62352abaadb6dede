# REST routes for the catalog and after-the-fact changes: products, refunds, cancellations, reverts, inside counts.
from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse
from pydantic import Field, model_validator
from sqlalchemy import select

from gateway.adapters.db.models import Site
from gateway.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from gateway.domain.roles import Person
from gateway.entrypoints.http.auth import (
    LOCAL,
    AsManager,
    AsSupervisor,
    order_looked_up,
    require_order,
    require_site,
    source_of,
)
from gateway.entrypoints.http.deps import RT, CodePath
from gateway.entrypoints.http.ticket import ticket_html
from gateway.entrypoints.runtime import Runtime
from gateway.services.accounts import person_named
from gateway.services.adjustments import cancel, refund, revert
from gateway.services.auto_checkout import inside_now
from gateway.services.catalog import (
    ProductIn,
    create_product,
    delete_product,
    list_products,
    product_sites,
    product_zone,
    update_product,
)
from gateway.services.inputs import StrictIn
from gateway.services.orders import order_view
from gateway.services.pins import set_pin
from gateway.services.queries import redemption_site

router = APIRouter()


SkuPath = Annotated[str, Path(min_length=1, max_length=64)]
# Ids are database integers: anything beyond 2**53 cannot name a row (and overflows SQLite's driver).
IdPath = Annotated[int, Path(ge=1, le=2**53)]


class RefundIn(StrictIn):
    """Exactly one of `units` and `all`: a full refund is asked for, never implied by a missing field."""

    units: int | None = Field(default=None, ge=1, le=1_000_000_000, description="unredeemed units to refund")
    all: bool = Field(default=False, description="true: refund every unredeemed unit")
    reason: str = Field(default="", max_length=200)
    by: str = Field(
        default="api",
        pattern=r"^[A-Za-z0-9_.@-]{1,40}$",
        description="ignored: the audit records the caller (kept so older clients still validate)",
    )

    @model_validator(mode="after")
    def _one_of(self) -> RefundIn:
        if (self.units is None) == (not self.all):
            raise ValueError('say how much: {"units": N} or {"all": true}, exactly one of them')
        return self


class ReasonIn(StrictIn):
    reason: str = Field(min_length=1, max_length=200)
    by: str = Field(
        default="api",
        pattern=r"^[A-Za-z0-9_.@-]{1,40}$",
        description="ignored: the audit records the caller (kept so older clients still validate)",
    )


def _sites(rt: Runtime) -> dict[str, int]:
    with rt.db.read() as tx:
        return tx.sites.ids()


def _product_sites(who: Person, body: ProductIn) -> None:
    """A product sold for some sites is theirs; one without `rules.sites` is valid everywhere (owners)."""
    sites: list[str | None] = list(body.rules.sites or []) if body.rules is not None else []
    for slug in sites or [None]:
        require_site(who, slug)


def _stored_product_sites(r: Runtime, who: Person, sku: str) -> None:
    stored = product_sites(r.db, sku)
    if stored is not None:
        sites: list[str | None] = list(stored)
        for slug in sites or [None]:
            require_site(who, slug)


@router.get("/api/products", tags=["products"])
def products(r: RT, who: AsManager) -> list[dict[str, Any]]:
    """The products of the caller's sites (a product without `rules.sites` is sold everywhere)."""
    slugs = {i: slug for slug, i in _sites(r).items()}
    return [p for p in list_products(r.db) if _sold_at_mine(who, p, slugs)]


def _sold_at_mine(who: Person, product: dict[str, Any], slugs: dict[int, str]) -> bool:
    ids = (product.get("rules") or {}).get("sites") or []
    return who.all_sites or not ids or any(who.sees_site(slugs.get(i)) for i in ids)


@router.post("/api/products", tags=["products"], status_code=201)
def new_product(r: RT, body: ProductIn, who: AsManager) -> dict[str, Any]:
    """Naive date-times are local in the zone of the product's `rules.sites` (when they share one),
    otherwise in the gateway's TIMEZONE. Managers add products for their own sites."""
    _product_sites(who, body)
    return create_product(r.db, body, _sites(r), product_zone(r.db, body, r.settings.timezone))


@router.put("/api/products/{sku}", tags=["products"])
def edit_product(r: RT, sku: SkuPath, body: ProductIn, who: AsManager) -> dict[str, Any]:
    """Changes apply to orders sold from now on; sold orders keep the rules they were sold with."""
    if body.sku != sku:
        raise ValidationFailed("the sku in the body must match the URL", field="sku")
    _stored_product_sites(r, who, sku)
    _product_sites(who, body)
    return update_product(r.db, body, _sites(r), product_zone(r.db, body, r.settings.timezone))


@router.delete("/api/products/{sku}", tags=["products"], status_code=204)
def retire_product(r: RT, sku: SkuPath, who: AsManager) -> None:
    _stored_product_sites(r, who, sku)
    delete_product(r.db, sku)


def _order_at(r: Runtime, who: Person, code: str) -> str:
    """The order's canonical code, once the caller may act on its site (other sites' orders: 404)."""
    order = require_order(who, order_view(r.db, code), code)
    require_site(who, order["site"])
    return str(order["code"])


@router.post("/api/orders/{code}/refund", tags=["orders"])
def refund_order(r: RT, code: CodePath, body: RefundIn, who: AsManager) -> dict[str, Any]:
    """Refund unredeemed units only (`{"units": N}`, or `{"all": true}` for every one of them); used
    units must be reverted first (409 otherwise)."""
    # adjust.refund reads units=None as "all": only an explicit `all` may get there.
    units = None if body.all else body.units
    return refund(r.db, _order_at(r, who, code), units, who.name, body.reason)


@router.post("/api/orders/{code}/cancel", tags=["orders"])
def cancel_order(r: RT, code: CodePath, body: ReasonIn, who: AsManager) -> dict[str, Any]:
    return cancel(r.db, _order_at(r, who, code), who.name, body.reason)


@router.post("/api/redemptions/{redemption_id}/revert", tags=["redemptions"])
def revert_redemption(r: RT, redemption_id: IdPath, body: ReasonIn, who: AsSupervisor) -> dict[str, Any]:
    """A supervisor undoes a redemption at their site with a reason; its units come back, it is audited."""
    found, site = redemption_site(r.db, redemption_id)
    if found and not who.sees_site(site):
        raise NotFound(f"no redemption {redemption_id}")
    if found:
        require_site(who, site)
    return revert(r.db, redemption_id, who.name, body.reason, default_tz=r.settings.timezone)


class PinIn(StrictIn):
    site: str = Field(min_length=1, max_length=32)
    pin: str = Field(pattern=r"^[0-9]{4,8}$")


@router.put("/api/users/{name}/pin", tags=["people"], status_code=204)
def put_pin(
    r: RT,
    name: Annotated[str, Path(min_length=1, max_length=40)],
    body: PinIn,
    who: AsManager,
    request: Request,
) -> None:
    """Give a person a PIN for signing in on handhelds at a site (unique among that site's verifiers).
    The caller must work at the site, and so must the person, who may not rank above the caller.
    A 409 (someone there has that PIN) tells that the PIN is in use: each is audited as a miss (the
    PIN itself is not logged) and the caller is paused after GUESS_LIMIT of them, like a code guesser."""
    require_site(who, body.site)
    target = person_named(r.db, name)
    if target is None or not target.may_site(body.site) or not who.at_least(target.role):
        raise Forbidden(f"{name!r} cannot get a PIN at {body.site!r} from you", site=body.site)
    source, limited = source_of(request), who is not LOCAL
    if limited:
        r.guard.admit(who.name, source, time.monotonic(), costs=False)
    try:
        set_pin(r.db, name, body.site, body.pin, r.pin_key)
    except Conflict:
        r.guard.missed(r.db, who.name, source, "pin", f"PIN in use at {body.site}", counts=limited)
        raise


@router.get("/api/orders/{code}/ticket", tags=["orders"], response_class=HTMLResponse)
def ticket(r: RT, code: CodePath, who: AsManager, request: Request) -> HTMLResponse:
    """A printable ticket: QR code, short manual-entry code, validity."""
    order = order_looked_up(r.guard, r.db, who, request, code)
    return HTMLResponse(ticket_html(order, r.settings.timezone))


@router.get("/api/inside", tags=["sites"])
def inside(r: RT, who: AsSupervisor) -> dict[str, Any]:
    """How many are inside now, per site the caller may see (entry/exit turnstile pairs)."""
    counts = inside_now(r.db)
    with r.engine.connect() as c:
        slugs = [s for (s,) in c.execute(select(Site.slug).order_by(Site.slug))]
    return {"sites": {s: counts.get(s, 0) for s in slugs if who.sees_site(s)}}
