# The REST API (FastAPI): thin routes that parse, call one service function and map errors at the edge.
from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Body, Depends, FastAPI, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field

from gateway import __version__
from gateway.access import LOCAL, AsSupervisor, AsVerifier, api_user, may_site
from gateway.api_rules import router as rules_router
from gateway.demo import write_qr
from gateway.devices import DeviceIn, list_devices, upsert_device
from gateway.errors import HexiaoError, ValidationFailed
from gateway.fleet.routes import router as fleet_router
from gateway.manual import RedeemIn, redeem_typed
from gateway.orders import OrderIn, SiteIn, create_orders, create_site, import_csv, list_sites, order_view
from gateway.redemptions import RedemptionFilter, export_csv, list_redemptions
from gateway.reports_routes import router as reports_router
from gateway.runtime import Runtime
from gateway.web import install as install_console
from gateway.webhooks.routes import router as webhooks_router


class OrdersIn(BaseModel):
    orders: list[OrderIn] = Field(min_length=1, max_length=10_000)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.rt
    return runtime


RT = Annotated[Runtime, Depends(_runtime)]


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

    @app.exception_handler(HexiaoError)
    async def _hexiao_error(request: Request, err: HexiaoError) -> JSONResponse:
        body = {"error": {"code": err.code, "message": err.message, "details": err.details}}
        return JSONResponse(body, status_code=err.http_status)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, err: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"] if p != "body"), "error": e["msg"]}
            for e in err.errors()
        ]
        first = problems[0] if problems else {"field": "", "error": "invalid request"}
        body = {
            "error": {
                "code": "VALIDATION",
                "message": f"{first['field']}: {first['error']}",
                "details": {"problems": problems},
            }
        }
        return JSONResponse(body, status_code=422)

    @app.get("/api/health", tags=["system"])
    def health(r: RT) -> JSONResponse:
        h = r.health()
        return JSONResponse(h, status_code=200 if h["ok"] else 503)

    @app.get("/api/sites", tags=["sites"], dependencies=[Depends(api_user("verifier"))])
    def sites(r: RT) -> list[dict[str, Any]]:
        return list_sites(r.engine)

    @app.post("/api/sites", tags=["sites"], status_code=201, dependencies=[Depends(api_user("owner"))])
    def new_site(r: RT, site: SiteIn) -> dict[str, Any]:
        out = create_site(r.engine, site)
        r.service.forget_places()
        return out

    @app.post("/api/orders", tags=["orders"], status_code=201, dependencies=[Depends(api_user("manager"))])
    def new_orders(r: RT, body: OrdersIn) -> dict[str, Any]:
        codes = create_orders(r.engine, body.orders, r.settings.key)
        return {"created": len(codes), "codes": codes}

    @app.post("/api/orders/import", tags=["orders"], dependencies=[Depends(api_user("manager"))])
    async def import_orders(r: RT, request: Request, file: UploadFile | None = None) -> dict[str, Any]:
        """CSV with a header row (code,title,quantity,site,valid_from,valid_until,external_ref): as an
        upload (`file`) or as the raw request body with Content-Type text/csv."""
        raw = await file.read() if file is not None else await request.body()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as err:
            raise ValidationFailed("the CSV is not UTF-8") from err
        return import_csv(r.engine, text, r.settings.key)

    @app.get("/api/orders/{code}", tags=["orders"], dependencies=[Depends(api_user("verifier"))])
    def get_order(r: RT, code: str) -> dict[str, Any]:
        return order_view(r.engine, code)

    @app.get("/api/orders/{code}/qr.{fmt}", tags=["orders"], dependencies=[Depends(api_user("manager"))])
    def get_qr(r: RT, code: str, fmt: str) -> Response:
        if fmt not in ("png", "svg"):
            raise ValidationFailed("format must be png or svg", field="fmt")
        order_view(r.engine, code)  # 404 for unknown codes
        png, svg = write_qr(code, r.settings.var_dir / "qr")
        path = png if fmt == "png" else svg
        return Response(path.read_bytes(), media_type="image/png" if fmt == "png" else "image/svg+xml")

    @app.post("/api/redeem", tags=["redemptions"])
    async def redeem(r: RT, body: Annotated[RedeemIn, Body()], who: AsVerifier) -> dict[str, Any]:
        """Redeem a typed code (manual entry). Same rules and verdicts as a device scan."""
        may_site(who, body.site)
        if who is not LOCAL:
            body = body.model_copy(update={"by": who.name})
        v = await redeem_typed(r, body)
        return v.to_dict()

    @app.get("/api/redemptions", tags=["redemptions"])
    def redemptions(r: RT, f: Annotated[RedemptionFilter, Query()], who: AsSupervisor) -> dict[str, Any]:
        return list_redemptions(r.engine, f, None if who.all_sites else who.sites)

    @app.get("/api/redemptions.csv", tags=["redemptions"])
    def redemptions_csv(
        r: RT, f: Annotated[RedemptionFilter, Query()], who: AsSupervisor
    ) -> StreamingResponse:
        return StreamingResponse(
            export_csv(r.engine, f, None if who.all_sites else who.sites),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="redemptions.csv"'},
        )

    @app.get("/api/devices", tags=["devices"], dependencies=[Depends(api_user("manager"))])
    def devices(r: RT) -> list[dict[str, Any]]:
        return list_devices(r.engine)

    @app.post("/api/devices", tags=["devices"], status_code=201, dependencies=[Depends(api_user("manager"))])
    def register_device(r: RT, body: DeviceIn) -> dict[str, Any]:
        out = upsert_device(r.engine, body)
        r.service.forget_places()
        return out

    app.include_router(fleet_router)  # /api/fleet/... (gateway/fleet)
    app.include_router(webhooks_router)  # /api/webhooks/... (gateway/webhooks)
    app.include_router(reports_router)  # /api/reports/... (gateway/reports_routes.py)
    install_console(app)  # the web console (gateway/web) and its auth (gateway/auth)
    app.include_router(rules_router)
    return app
