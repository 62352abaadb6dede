# REST routes for the catalog and after-the-fact changes: products, refunds, cancellations, reverts, inside counts.
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse
from pydantic import Field, model_validator
from sqlalchemy import select

from gateway.adapters.db.models import Site
from gateway.domain.errors import ValidationFailed
from gateway.domain.roles import Person
from gateway.entrypoints.http.auth import LOCAL, AsManager, AsSupervisor, caller
from gateway.entrypoints.http.ticket import ticket_html
from gateway.entrypoints.runtime import Runtime
from gateway.services.adjustments import cancel, refund, revert
from gateway.services.auto_checkout import inside_now
from gateway.services.catalog import (
    ProductIn,
    create_product,
    delete_product,
    list_products,
    product_zone,
    update_product,
)
from gateway.services.inputs import StrictIn
from gateway.services.orders import order_view
from gateway.services.pins import set_pin
from gateway.services.sites import site_ids

router = APIRouter()


def _runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.rt
    return rt


RT = Annotated[Runtime, Depends(_runtime)]


CodePath = Annotated[str, Path(min_length=1, max_length=128)]
SkuPath = Annotated[str, Path(min_length=1, max_length=64)]
# Ids are database integers: anything beyond 2**53 cannot name a row (and overflows SQLite's driver).
IdPath = Annotated[int, Path(ge=1, le=2**53)]


class RefundIn(StrictIn):
    """Exactly one of `units` and `all`: a full refund is asked for, never implied by a missing field."""

    units: int | None = Field(default=None, ge=1, le=1_000_000_000, description="unredeemed units to refund")
    all: bool = Field(default=False, description="true: refund every unredeemed unit")
    reason: str = Field(default="", max_length=200)
    by: str = Field(default="api", pattern=r"^[A-Za-z0-9_.@-]{1,40}$")

    @model_validator(mode="after")
    def _one_of(self) -> RefundIn:
        if (self.units is None) == (not self.all):
            raise ValueError('say how much: {"units": N} or {"all": true}, exactly one of them')
        return self


class ReasonIn(StrictIn):
    reason: str = Field(min_length=1, max_length=200)
    by: str = Field(default="api", pattern=r"^[A-Za-z0-9_.@-]{1,40}$")


def actor(who: Person, claimed: str) -> str:
    """Signed-in people and token holders are recorded as themselves; only local calls may name someone."""
    return claimed if who is LOCAL else who.name


def _sites(rt: Runtime) -> dict[str, int]:
    with rt.engine.connect() as c:
        return site_ids(c)


@router.get("/api/products", tags=["products"], dependencies=[Depends(caller("manager", loopback=True))])
def products(r: RT) -> list[dict[str, Any]]:
    return list_products(r.engine)


@router.post(
    "/api/products",
    tags=["products"],
    status_code=201,
    dependencies=[Depends(caller("manager", loopback=True))],
)
def new_product(r: RT, body: ProductIn) -> dict[str, Any]:
    """Naive date-times are local in the zone of the product's `rules.sites` (when they share one),
    otherwise in the gateway's TIMEZONE."""
    return create_product(r.engine, body, _sites(r), product_zone(r.engine, body, r.settings.timezone))


@router.put(
    "/api/products/{sku}", tags=["products"], dependencies=[Depends(caller("manager", loopback=True))]
)
def edit_product(r: RT, sku: SkuPath, body: ProductIn) -> dict[str, Any]:
    """Changes apply to orders sold from now on; sold orders keep the rules they were sold with."""
    if body.sku != sku:
        raise ValidationFailed("the sku in the body must match the URL", field="sku")
    return update_product(r.engine, body, _sites(r), product_zone(r.engine, body, r.settings.timezone))


@router.delete(
    "/api/products/{sku}",
    tags=["products"],
    status_code=204,
    dependencies=[Depends(caller("manager", loopback=True))],
)
def retire_product(r: RT, sku: SkuPath) -> None:
    delete_product(r.engine, sku)


@router.post(
    "/api/orders/{code}/refund", tags=["orders"], dependencies=[Depends(caller("manager", loopback=True))]
)
def refund_order(r: RT, code: CodePath, body: RefundIn, who: AsManager) -> dict[str, Any]:
    """Refund unredeemed units only (`{"units": N}`, or `{"all": true}` for every one of them); used
    units must be reverted first (409 otherwise)."""
    # adjust.refund reads units=None as "all": only an explicit `all` may get there.
    units = None if body.all else body.units
    return refund(r.engine, code, units, actor(who, body.by), body.reason)


@router.post(
    "/api/orders/{code}/cancel", tags=["orders"], dependencies=[Depends(caller("manager", loopback=True))]
)
def cancel_order(r: RT, code: CodePath, body: ReasonIn, who: AsManager) -> dict[str, Any]:
    return cancel(r.engine, code, actor(who, body.by), body.reason)


@router.post(
    "/api/redemptions/{redemption_id}/revert",
    tags=["redemptions"],
    dependencies=[Depends(caller("supervisor", loopback=True))],
)
def revert_redemption(r: RT, redemption_id: IdPath, body: ReasonIn, who: AsSupervisor) -> dict[str, Any]:
    """A supervisor undoes a redemption with a reason; its units come back and it is audited."""
    return revert(r.engine, redemption_id, actor(who, body.by), body.reason, default_tz=r.settings.timezone)


class PinIn(StrictIn):
    site: str = Field(min_length=1, max_length=32)
    pin: str = Field(pattern=r"^[0-9]{4,8}$")


@router.put(
    "/api/users/{name}/pin",
    tags=["people"],
    status_code=204,
    dependencies=[Depends(caller("manager", loopback=True))],
)
def put_pin(r: RT, name: Annotated[str, Path(min_length=1, max_length=40)], body: PinIn) -> None:
    """Give a verifier a PIN for signing in on handhelds at a site (unique among that site's verifiers)."""
    set_pin(r.engine, name, body.site, body.pin)


@router.get(
    "/api/orders/{code}/ticket",
    tags=["orders"],
    response_class=HTMLResponse,
    dependencies=[Depends(caller("manager", loopback=True))],
)
def ticket(r: RT, code: CodePath) -> HTMLResponse:
    """A printable ticket: QR code, short manual-entry code, validity."""
    return HTMLResponse(ticket_html(order_view(r.engine, code), r.settings.timezone))


@router.get("/api/inside", tags=["sites"])
def inside(r: RT, who: AsSupervisor) -> dict[str, Any]:
    """How many are inside now, per site the caller may see (entry/exit turnstile pairs)."""
    counts = inside_now(r.engine)
    with r.engine.connect() as c:
        slugs = [s for (s,) in c.execute(select(Site.slug).order_by(Site.slug))]
    return {"sites": {s: counts.get(s, 0) for s in slugs if who.sees_site(s)}}
