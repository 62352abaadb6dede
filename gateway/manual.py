# Manual redemption (a code typed in the console or sent over REST), decided by the same service loop.
from __future__ import annotations

import asyncio
import secrets

from pydantic import BaseModel, Field
from sqlalchemy import select

from gateway.contract import Code, Sid, Verdict
from gateway.db.models import Site
from gateway.errors import Unavailable, ValidationFailed
from gateway.ledger import Request
from gateway.runtime import Runtime
from gateway.service import ConsoleRedeem


class RedeemIn(BaseModel):
    code: Code = Field(description="the QR code's text or the short manual-entry code")
    qty: int = Field(default=1, ge=1, le=99)
    amt: int | None = Field(default=None, ge=1, le=10_000_000, description="cents, for stored-value vouchers")
    op: str = Field(default="redeem", pattern="^(redeem|check)$", description="check: say what would happen")
    site: str = Field(max_length=32, description="slug of the site where the verifier stands")
    gate: str = Field(default="console", max_length=64)
    dir: str = Field(default="in", pattern="^(in|out)$")
    request_id: Sid | None = Field(
        default=None, description="idempotency key: the same id never redeems twice"
    )
    by: str = Field(default="api", pattern=r"^[A-Za-z0-9_.@-]{1,30}$", description="who redeems")


async def redeem_typed(rt: Runtime, body: RedeemIn, timeout: float = 10.0) -> Verdict:
    with rt.engine.connect() as c:
        site = c.execute(select(Site.id, Site.timezone).where(Site.slug == body.site)).first()
    if site is None:
        raise ValidationFailed(f"unknown site {body.site!r}", field="site")
    sid = body.request_id or secrets.token_hex(8)
    req = Request(
        f"web-{body.by}", sid, body.code.strip(), body.qty, body.dir, None, body.op, body.amt, None, body.by
    )
    fut = rt.service.submit_console(ConsoleRedeem(req, site.id, body.gate, site.timezone))
    try:
        return await asyncio.wait_for(asyncio.wrap_future(fut), timeout)
    except TimeoutError as err:
        raise Unavailable(
            "the redemption service did not answer in time; retry with the same request_id"
        ) from err
