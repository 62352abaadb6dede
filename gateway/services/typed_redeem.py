# Manual redemption (a code typed in the console or sent over REST), decided by the same service loop.
from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import Literal, Protocol

from pydantic import Field
from starlette.concurrency import run_in_threadpool

from gateway.domain.decisions import unknown_code
from gateway.domain.errors import NotFound, Unavailable, ValidationFailed
from gateway.domain.requests import Request, local_key
from gateway.domain.verdict import Verdict
from gateway.services.guessing import TypedGuard
from gateway.services.inputs import Code, Sid, StrictIn
from gateway.services.orders import order_view
from gateway.services.ports.database import Database
from gateway.services.redeem import ConsoleRedeem, RedemptionService

MISSES = ("UNKNOWN_CODE", "FORGED")  # what a code guesser mostly gets


class Gateway(Protocol):
    """What a typed redemption needs of the running gateway (the edges pass their Runtime)."""

    @property
    def db(self) -> Database: ...

    @property
    def service(self) -> RedemptionService: ...

    @property
    def guard(self) -> TypedGuard: ...


class RedeemIn(StrictIn):
    code: Code = Field(description="the QR code's text or the short manual-entry code")
    qty: int = Field(default=1, ge=1, le=99)
    amt: int | None = Field(default=None, ge=1, le=10_000_000, description="cents, for stored-value vouchers")
    op: Literal["redeem", "check"] = Field(default="redeem", description="check: say what would happen")
    site: str = Field(min_length=1, max_length=32, description="slug of the site where the verifier stands")
    gate: str = Field(default="console", min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")
    dir: Literal["in", "out"] = "in"
    request_id: Sid | None = Field(
        default=None,
        description="idempotency key, required for op=redeem (or the Idempotency-Key header): "
        "the same id never redeems twice",
    )
    by: str = Field(
        default="api",
        pattern=r"^[A-Za-z0-9_.@-]{1,30}$",
        description="ignored over REST: the ledger records the caller (kept so older clients validate)",
    )


def _site(db: Database, slug: str) -> tuple[int, str] | None:
    with db.read() as tx:
        return tx.sites.by_slug(slug)


def _hidden(db: Database, code: str, sees: Callable[[str | None], bool]) -> bool:
    """Whether the order named by `code` belongs to a site the caller may not see."""
    try:
        return not sees(order_view(db, code)["site"])
    except NotFound:
        return False


async def redeem_typed(
    rt: Gateway,
    body: RedeemIn,
    source: str,
    timeout: float = 10.0,
    *,
    local: bool = False,
    sees: Callable[[str | None], bool] | None = None,
) -> Verdict:
    """Decide one typed redemption for `body.by` (the caller) from client address `source`. A redemption
    must carry its idempotency key (`request_id`): after a time-out the caller retries with the same key
    and can never redeem twice. A `check` may go without (it changes nothing in the ledger), and then
    gets a one-off id. Both are rate-limited, and unknown codes are audited (services/guessing.py).

    `sees`: the sites the caller may see. Another site's order they may not see is answered exactly like
    an unknown code (and counted as a miss): a person's WRONG_SITE would tell that the code exists.
    Devices keep WRONG_SITE (their screens say it); the stored verdict stays what the ledger decided,
    so a retry maps the same stored verdict the same way."""
    if body.request_id is None and body.op == "redeem":
        raise ValidationFailed(
            "request_id: a redemption needs an idempotency key (request_id or the Idempotency-Key header)",
            field="request_id",
        )
    if not local:  # the local token is this machine's own tools (who could read the database anyway)
        rt.guard.admit(body.by, source, time.monotonic())
    sid = body.request_id or secrets.token_hex(8)

    async def decide() -> Verdict:
        # The database look-up and a possibly full service queue block: never on the event loop.
        site = await run_in_threadpool(_site, rt.db, body.site)
        if site is None:
            raise ValidationFailed(f"unknown site {body.site!r}", field="site")
        req = Request(
            f"web-{body.by}",
            sid,
            body.code.strip(),
            body.qty,
            body.dir,
            None,
            body.op,
            body.amt,
            None,
            body.by,
            key=local_key(sid) if local else "",
        )
        fut = await run_in_threadpool(
            rt.service.submit_console, ConsoleRedeem(req, site[0], body.gate, site[1])
        )
        return await asyncio.wrap_future(fut)

    try:
        verdict = await asyncio.wait_for(decide(), timeout)
    except TimeoutError as err:
        raise Unavailable(
            "the redemption service did not answer in time; retry with the same request_id",
            retry=True,
        ) from err
    if (
        sees is not None
        and verdict.reason == "WRONG_SITE"
        and await run_in_threadpool(_hidden, rt.db, body.code.strip(), sees)
    ):
        verdict = rt.service.transport.render(verdict.sid, unknown_code())
    if verdict.reason in MISSES:
        await run_in_threadpool(
            lambda: rt.guard.missed(rt.db, body.by, source, body.op, body.code, counts=not local)
        )
    return verdict
