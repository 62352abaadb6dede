# The REST API (FastAPI): thin routes that parse, call one service function and map errors at the edge.
from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Header, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway import __version__
from gateway.adapters.db.engine import storage_full
from gateway.domain.errors import HexiaoError, ValidationFailed
from gateway.domain.identifiers import SID_RE
from gateway.entrypoints.console import install as install_console
from gateway.entrypoints.http.auth import (
    LOCAL,
    AsManager,
    AsSupervisor,
    AsVerifier,
    caller,
    require_site,
    source_of,
)
from gateway.entrypoints.http.deps import RT
from gateway.entrypoints.http.hosts import HostAllowlist
from gateway.entrypoints.http.metrics import router as metrics_router
from gateway.entrypoints.http.routes.camera import router as camera_router
from gateway.entrypoints.http.routes.catalog import router as rules_router
from gateway.entrypoints.http.routes.fleet import router as fleet_router
from gateway.entrypoints.http.routes.orders import router as orders_router
from gateway.entrypoints.http.routes.ota import router as ota_router
from gateway.entrypoints.http.routes.reports import router as reports_router
from gateway.entrypoints.http.routes.webhooks import router as webhooks_router
from gateway.entrypoints.runtime import Runtime
from gateway.services.devices import DeviceIn, device_site, list_devices, upsert_device
from gateway.services.orders import (
    SiteIn,
    create_site,
    list_sites,
)
from gateway.services.redemption_log import RedemptionFilter, export_csv, list_redemptions
from gateway.services.typed_redeem import RedeemIn, redeem_typed

# Machine codes for Starlette's own HTTP errors (unknown route, wrong method, unreadable form ...).
HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The one error shape of the HTTP API."""
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _problem(e: Any) -> dict[str, str]:
    loc = [str(p) for p in e.get("loc", ())]
    where = loc[0] if loc else ""
    field = ".".join(loc[1:]) if where in ("body", "query", "path", "header", "cookie") else ".".join(loc)
    kind = e.get("type", "")
    if kind == "json_invalid":
        ctx = e.get("ctx") or {}
        return {"field": "body", "error": f"not valid JSON ({ctx.get('error', 'decode error')})"}
    if where == "body" and not field:
        # The whole body: missing, or not a JSON object (e.g. sent as text/plain or form data).
        field = "body"
        if kind in ("model_attributes_type", "model_type", "dict_type"):
            return {"field": field, "error": "expected a JSON object (Content-Type: application/json)"}
    return {"field": field or where, "error": str(e.get("msg", "invalid"))}


def _idempotency_key(header: str | None, body_key: str | None) -> str | None:
    """The request's idempotency key from the Idempotency-Key header or `request_id` (the same if both)."""
    if header is not None and not SID_RE.match(header):
        raise ValidationFailed("Idempotency-Key: 1-24 characters A-Z a-z 0-9 _ -", field="Idempotency-Key")
    if header is not None and body_key is not None and header != body_key:
        raise ValidationFailed(
            "Idempotency-Key and request_id differ; send one of them (or the same value)",
            field="request_id",
        )
    return body_key if body_key is not None else header


def create_app(start: Callable[[], Runtime]) -> FastAPI:
    """`start` builds the runtime when the server starts (never at import time)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.rt = start()
        try:
            yield
        finally:
            app.state.rt.stop()

    app = FastAPI(title="Hexiao gateway", version=__version__, lifespan=lifespan)
    app.add_middleware(HostAllowlist)

    @app.exception_handler(HexiaoError)
    async def _hexiao_error(request: Request, err: HexiaoError) -> JSONResponse:
        return JSONResponse(error_body(err.code, err.message, err.details), status_code=err.http_status)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, err: RequestValidationError) -> JSONResponse:
        # FastAPI's own parse errors (bad JSON, wrong types, missing body) in the one error shape.
        problems = [_problem(e) for e in err.errors()][:50]
        first = problems[0] if problems else {"field": "body", "error": "invalid request"}
        body = error_body("VALIDATION", f"{first['field']}: {first['error']}"[:300], {"problems": problems})
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, err: StarletteHTTPException) -> Response:
        # Under /api: unknown routes, wrong methods and unreadable bodies answer in the one error shape;
        # the console keeps Starlette's plain answers (its pages have their own error pages).
        if not request.url.path.startswith("/api"):
            return await http_exception_handler(request, err)
        code = HTTP_CODES.get(err.status_code, f"HTTP_{err.status_code}")
        detail = err.detail if isinstance(err.detail, str) else "request refused"
        return JSONResponse(
            error_body(code, detail), status_code=err.status_code, headers=dict(err.headers or {})
        )

    @app.exception_handler(Exception)
    async def _internal(request: Request, err: Exception) -> JSONResponse:
        # A bug, not bad input: the client still gets the one shape (the server logs the traceback).
        if storage_full(err):
            # Not a bug but the machine: say so (503, retry later) instead of "internal error".
            msg = "the gateway's disk is full: nothing was saved; free space on it and try again"
            return JSONResponse(error_body("UNAVAILABLE", msg), status_code=503)
        return JSONResponse(error_body("INTERNAL", "internal error"), status_code=500)

    @app.get("/api/health", tags=["system"])
    def health(r: RT) -> JSONResponse:
        h = r.health()
        return JSONResponse(h, status_code=200 if h["ok"] else 503)

    @app.get("/api/sites", tags=["sites"])
    def sites(r: RT, who: AsVerifier) -> list[dict[str, Any]]:
        """The sites the caller works at (every site for owners)."""
        return [s for s in list_sites(r.db) if who.sees_site(s["slug"])]

    @app.post("/api/sites", tags=["sites"], status_code=201, dependencies=[Depends(caller("owner"))])
    def new_site(r: RT, site: SiteIn) -> dict[str, Any]:
        """A site without `timezone` gets the gateway's TIMEZONE setting."""
        out = create_site(r.db, site, r.settings.timezone)
        r.service.forget_places()
        return out

    @app.post("/api/redeem", tags=["redemptions"])
    async def redeem(
        r: RT,
        body: Annotated[RedeemIn, Body()],
        who: AsVerifier,
        request: Request,
        idempotency_key: Annotated[str | None, Header(max_length=64)] = None,
    ) -> dict[str, Any]:
        """Redeem a typed code (manual entry). Same rules and verdicts as a device scan.

        A redemption needs an idempotency key: `request_id` in the body or the `Idempotency-Key`
        header (both only with the same value). Retrying with the same key never redeems twice."""
        require_site(who, body.site)
        # The audit names the caller (a person, a token's holder or `local`), never what the body claims.
        update: dict[str, Any] = {
            "request_id": _idempotency_key(idempotency_key, body.request_id),
            "by": who.name,
        }
        v = await redeem_typed(
            r, body.model_copy(update=update), source_of(request), local=who is LOCAL, sees=who.sees_order
        )
        return v.to_dict()

    @app.get("/api/redemptions", tags=["redemptions"])
    def redemptions(r: RT, f: Annotated[RedemptionFilter, Query()], who: AsSupervisor) -> dict[str, Any]:
        return list_redemptions(r.db, f, None if who.all_sites else who.sites)

    @app.get("/api/redemptions.csv", tags=["redemptions"])
    def redemptions_csv(
        r: RT, f: Annotated[RedemptionFilter, Query()], who: AsSupervisor
    ) -> StreamingResponse:
        return StreamingResponse(
            export_csv(r.db, f, None if who.all_sites else who.sites),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="redemptions.csv"'},
        )

    @app.get("/api/devices", tags=["devices"])
    def devices(r: RT, who: AsManager) -> list[dict[str, Any]]:
        return list_devices(r.db, who)

    @app.post("/api/devices", tags=["devices"], status_code=201)
    def register_device(r: RT, body: DeviceIn, who: AsManager) -> dict[str, Any]:
        """Register or move a device: the caller must work at its new site and, for a device that is
        already placed, at its current one (no manager takes another site's gate)."""
        require_site(who, body.site)
        placed, old_site = device_site(r.db, body.device)
        if placed:
            require_site(who, old_site)
        out = upsert_device(r.db, body)
        r.service.forget_places()
        return out

    app.include_router(orders_router)  # /api/orders... (gateway/entrypoints/http/routes/orders.py)
    app.include_router(fleet_router)  # /api/fleet/... (gateway/fleet)
    app.include_router(webhooks_router)  # /api/webhooks/... (gateway/webhooks)
    app.include_router(reports_router)  # /api/reports/... (gateway/entrypoints/http/routes/reports.py)
    app.include_router(metrics_router)  # /metrics for Prometheus (gateway/entrypoints/http/metrics.py)
    app.include_router(ota_router)  # /api/ota/... over-the-air updates (routes/ota.py)
    app.include_router(camera_router)  # /api/camera/... (frames kept for support, CAMERA_DEBUG only)
    install_console(app)  # the web console (gateway/entrypoints/console) and its auth (gateway/auth)
    app.include_router(rules_router)
    return app
