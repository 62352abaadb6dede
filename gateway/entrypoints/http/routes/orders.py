# REST edge of orders: create (JSON), import (CSV upload), look up by code, QR image.
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.domain.errors import HexiaoError, ValidationFailed
from gateway.domain.roles import Person
from gateway.entrypoints.http.auth import (
    LOCAL,
    AsManager,
    AsVerifier,
    order_looked_up,
    require_site,
    source_of,
)
from gateway.entrypoints.http.deps import RT, CodePath
from gateway.entrypoints.qr import write_qr
from gateway.entrypoints.runtime import Runtime
from gateway.services.guessing import creating
from gateway.services.inputs import StrictIn
from gateway.services.orders import OrderIn, create_orders, import_csv

router = APIRouter()

MAX_IMPORT = 20 * 1024 * 1024  # bytes of CSV in one import


class OrdersIn(StrictIn):
    orders: list[OrderIn] = Field(min_length=1, max_length=10_000)


def _creating(r: Runtime, who: Person, request: Request) -> AbstractContextManager[dict[str, str | None]]:
    limited = who is not LOCAL
    return creating(r.guard, r.db, who.name, source_of(request), who.sees_order, limited=limited)


class UnsupportedMedia(HexiaoError):
    code = "UNSUPPORTED_MEDIA_TYPE"
    http_status = 415


async def _csv_bytes(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_IMPORT:
        raise ValidationFailed(f"the CSV is larger than {MAX_IMPORT} bytes")
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("multipart/form-data", "text/csv"):
        # text/plain (what a cross-site form can send without asking) is never read as orders.
        raise UnsupportedMedia(
            "send the CSV as text/csv or as a multipart upload (a file part named 'file')",
            content_type=ctype[:80],
        )
    if ctype == "multipart/form-data":
        try:
            form = await request.form()
        except StarletteHTTPException as err:  # a broken multipart body
            raise ValidationFailed(f"the upload cannot be read: {err.detail}", field="file") from None
        part = form.get("file")
        if not isinstance(part, UploadFile):
            # A `file` part without a filename arrives as a plain text field (and no part at all as None).
            raise ValidationFailed(
                "send the CSV as a file part named 'file' (with a filename), or as a text/csv body",
                field="file",
            )
        raw = await part.read(MAX_IMPORT + 1)
    else:
        raw = await request.body()
    if len(raw) > MAX_IMPORT:
        raise ValidationFailed(f"the CSV is larger than {MAX_IMPORT} bytes")
    return raw


@router.post("/api/orders", tags=["orders"], status_code=201)
def new_orders(r: RT, body: OrdersIn, who: AsManager, request: Request) -> dict[str, Any]:
    """Orders for the caller's sites (an order without a site is valid everywhere: owners only).
    A chosen code that another site's order has counts as a miss (services/guessing.py)."""
    for o in body.orders:
        require_site(who, o.site)
    with _creating(r, who, request) as taken:
        codes = create_orders(
            r.db,
            body.orders,
            r.settings.key,
            r.settings.timezone,
            lambda s: require_site(who, s),
            taken,
        )
    return {"created": len(codes), "codes": codes}


@router.post("/api/orders/import", tags=["orders"])
async def import_orders(r: RT, request: Request, who: AsManager) -> dict[str, Any]:
    """CSV with a header row (code,title,quantity,site,valid_from,valid_until,external_ref): as a
    multipart upload (a file part named `file`) or as the raw request body with Content-Type text/csv.
    A file naming a site the caller may not act on is refused as a whole (403), nothing imported."""
    raw = await _csv_bytes(request)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValidationFailed("the CSV is not UTF-8") from err

    def run() -> dict[str, Any]:
        with _creating(r, who, request) as taken:
            return import_csv(
                r.db, text, r.settings.key, r.settings.timezone, lambda s: require_site(who, s), taken
            )

    return await run_in_threadpool(run)


@router.get("/api/orders/{code}", tags=["orders"])
def get_order(r: RT, code: CodePath, who: AsVerifier, request: Request) -> dict[str, Any]:
    """Another site's order answers 404, like an unknown code. Unknown codes count as guesses
    (audited; too many in a minute pause the caller's look-ups, 429)."""
    return order_looked_up(r.guard, r.db, who, request, code)


@router.get("/api/orders/{code}/qr.{fmt}", tags=["orders"])
def get_qr(r: RT, code: CodePath, fmt: str, who: AsManager, request: Request) -> Response:
    if fmt not in ("png", "svg"):
        raise ValidationFailed("format must be png or svg", field="fmt")
    order_looked_up(r.guard, r.db, who, request, code)  # 404 for unknown and other sites' codes
    png, svg = write_qr(code, r.settings.var_dir / "qr")
    path = png if fmt == "png" else svg
    return Response(path.read_bytes(), media_type="image/png" if fmt == "png" else "image/svg+xml")
