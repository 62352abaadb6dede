# REST edge of the webhooks: POST /api/webhooks/orders (signed shop events in), outbound delivery status.
from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool

from gateway.adapters.webhooks.outbound import Deliverer
from gateway.adapters.webhooks.signing import verify
from gateway.config import WebhookSettings
from gateway.domain.errors import Unavailable, ValidationFailed
from gateway.domain.roles import Person
from gateway.entrypoints.http.auth import caller
from gateway.services import webhooks_in as inbound

MAX_BODY = 64 * 1024


@dataclass
class Webhooks:
    settings: WebhookSettings
    deliverer: Deliverer | None


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Runs inside the app's own lifespan (FastAPI nests an included router's), so the runtime exists.
    settings: WebhookSettings = app.state.rt.settings.webhooks  # validated at start, with the rest
    targets = settings.targets()
    deliverer = Deliverer(app.state.rt.engine, targets, settings, app.state.rt.leader) if targets else None
    if deliverer is not None:
        deliverer.start()
    app.state.webhooks = Webhooks(settings, deliverer)
    try:
        yield
    finally:
        if deliverer is not None:
            deliverer.stop()


router = APIRouter(tags=["webhooks"], lifespan=lifespan)


def _hooks(request: Request) -> Webhooks:
    hooks: Webhooks = request.app.state.webhooks
    return hooks


Hooks = Annotated[Webhooks, Depends(_hooks)]


@router.post("/api/webhooks/orders")
async def order_event(request: Request, hooks: Hooks) -> dict[str, Any]:
    """An order event from the shop system, signed with WEBHOOK_SECRET (see docs/integrations.md)."""
    secret = hooks.settings.webhook_secret
    if not secret:
        raise Unavailable("the order webhook is off: set WEBHOOK_SECRET to turn it on")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:  # refuse before reading it all into memory
        raise ValidationFailed(f"the body is larger than {MAX_BODY} bytes")
    body = await request.body()
    if len(body) > MAX_BODY:
        raise ValidationFailed(f"the body is larger than {MAX_BODY} bytes")
    now = time.time()
    verify(
        secret,
        request.headers.get("x-hexiao-timestamp"),
        request.headers.get("x-hexiao-signature"),
        body,
        now,
        hooks.settings.webhook_tolerance_s,
    )
    ev = inbound.parse(body)
    rt = request.app.state.rt
    out = await run_in_threadpool(
        lambda: inbound.handle(
            rt.db, ev, rt.settings.key, now, secret=secret, default_tz=rt.settings.timezone
        )
    )
    return {"ok": True, "event": ev.id, "type": ev.type, **out}


@router.get("/api/webhooks/outbound")
def outbound_status(hooks: Hooks, who: Annotated[Person, Depends(caller("manager"))]) -> dict[str, Any]:
    """Each outbound receiver: how far delivery got, consecutive failures and the last error."""
    d = hooks.deliverer
    return {"targets": d.status() if d is not None else [], "denials": hooks.settings.webhook_denials}
