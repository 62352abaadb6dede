# The verifier's page: look up a typed code, pick the quantity, confirm — decided like a device scan.
from __future__ import annotations

import re
import secrets
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy import select

from gateway.adapters.db.models import Site
from gateway.domain.errors import HexiaoError, NotFound
from gateway.domain.identifiers import SID_RE
from gateway.domain.roles import Person
from gateway.entrypoints.console.guard import CONSOLE, PageForbidden, rt_of
from gateway.entrypoints.console.i18n import translator
from gateway.entrypoints.console.render import lang_of, page
from gateway.entrypoints.http.auth import caller, source_of
from gateway.services.guessing import looked_up
from gateway.services.typed_redeem import RedeemIn, redeem_typed

router = APIRouter()
QTY_RE = re.compile(r"^[0-9]{1,2}$")
AMOUNT_RE = re.compile(r"^[0-9]{1,6}(\.[0-9]{1,2})?$")  # yuan, at most two decimals


def sites_for(request: Request, person: Person) -> list[str]:
    with rt_of(request).engine.connect() as c:
        slugs = [s for s in c.execute(select(Site.slug).order_by(Site.slug)).scalars()]
    return [s for s in slugs if person.may_site(s)]


def _lookup(request: Request, person: Person, code: str) -> tuple[dict[str, Any] | None, str]:
    t = translator(lang_of(request))
    try:
        rt = rt_of(request)
        # Another site's order the person may not see reads (and counts) like an unknown code.
        order = looked_up(rt.guard, rt.db, person.name, source_of(request), code, sees=person.sees_order)
    except NotFound:
        return None, t("No order has this code.")
    except HexiaoError as err:  # too many unknown codes: paused for a moment
        return None, err.message
    return order, ""


@router.get("/console/redeem", include_in_schema=False)
def redeem_page(
    request: Request, code: str = "", site: str = "", person: Person = Depends(caller("verifier", CONSOLE))
) -> Response:
    sites = sites_for(request, person)
    site = site if site in sites else (sites[0] if sites else "")
    code = code.strip()[:128]
    order, error = _lookup(request, person, code) if code and sites else (None, "")
    return page(
        request,
        "redeem.html",
        person,
        sites=sites,
        site=site,
        code=code,
        order=order,
        error=error,
        verdict=None,
        # A fresh idempotency key per look-up: a double-click or a resubmitted form redeems once.
        request_id=secrets.token_hex(8),
    )


@router.post("/console/redeem", include_in_schema=False)
async def redeem_confirm(request: Request, person: Person = Depends(caller("verifier", CONSOLE))) -> Response:
    form = await request.form()
    sites = sites_for(request, person)
    site = str(form.get("site", ""))
    if site not in sites:
        raise PageForbidden()
    t = translator(lang_of(request))
    code = str(form.get("code", "")).strip()
    # The key was made when the form was rendered: a double submit or a retry after a time-out carries
    # the same key and redeems once. Without one (a hand-made post) nothing is redeemed.
    request_id = str(form.get("request_id", ""))
    try:
        amount = str(form.get("amount", "")).strip()
        qty = str(form.get("qty", "1")).strip() or "1"
        if not QTY_RE.match(qty) or (amount and not AMOUNT_RE.match(amount)):
            raise ValueError("qty or amount")
        # Vouchers are redeemed by amount (yuan in the form, cents on the wire); Decimal avoids 0.1+0.2 drift.
        amt = int((Decimal(amount) * 100).to_integral_value()) if amount else None
        body = RedeemIn(
            code=code,
            qty=int(qty),
            amt=amt,
            site=site,
            gate="console",
            request_id=request_id or None,
            by=person.name,
        )
        verdict = (
            await redeem_typed(rt_of(request), body, source_of(request), sees=person.sees_order)
        ).to_dict()
        error = ""
    except (ValidationError, ValueError, ArithmeticError):
        verdict, error = (
            None,
            t("Amount (yuan)") + ": > 0" if form.get("amount") else t("Quantity") + ": 1–99",
        )
    except HexiaoError as err:
        verdict, error = None, err.message
    order = None
    if verdict is None:
        order, _ = _lookup(request, person, code)
    return page(
        request,
        "redeem.html",
        person,
        status_code=200 if verdict else 422,
        sites=sites,
        site=site,
        code="" if verdict else code,
        order=order,
        error=error,
        verdict=verdict,
        # A new key only once this one got its verdict; after an error (a time-out, say) the next
        # submit must reuse it, or a redemption that did land would happen twice.
        request_id=secrets.token_hex(8) if verdict or not SID_RE.match(request_id) else request_id,
    )
