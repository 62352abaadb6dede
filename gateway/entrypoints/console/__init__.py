# The web console: `install(app)` adds its pages, static files, error pages and live feed to the gateway app.
from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from gateway.domain.errors import HexiaoError
from gateway.entrypoints.console import ota, pages, redeem, signin, users
from gateway.entrypoints.console.guard import CsrfFailed, PageForbidden, SignInFirst
from gateway.entrypoints.console.i18n import translator
from gateway.entrypoints.console.live import LiveHub
from gateway.entrypoints.console.render import lang_of, page
from gateway.entrypoints.http.auth import optional_user
from gateway.services.accounts import ensure_owner

log = logging.getLogger(__name__)
STATIC = Path(__file__).resolve().parent / "static"

static_router = APIRouter()


@static_router.get("/console/static/{name}", include_in_schema=False)
def static(name: str) -> Response:
    files = {p.name: p for p in STATIC.iterdir() if p.is_file()}
    if name not in files:  # a fixed set of names: no path from the URL ever reaches the file system
        raise HTTPException(404)
    return FileResponse(files[name], headers={"Cache-Control": "public, max-age=300"})


web_router = APIRouter()
for r in (signin.router, redeem.router, pages.router, ota.router, users.router, static_router):
    web_router.include_router(r)


def _person(request: Request) -> Any:
    try:
        return optional_user(request)
    except HexiaoError:
        return None


async def _sign_in_first(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignInFirst)
    from urllib.parse import quote

    return RedirectResponse("/console/login?next=" + quote(exc.next_url, safe="/"), status_code=303)


async def _forbidden(request: Request, exc: Exception) -> Response:
    return signin.forbidden_page(request, _person(request))


async def _csrf(request: Request, exc: Exception) -> Response:
    t = translator(lang_of(request))
    return page(
        request,
        "error.html",
        _person(request),
        403,
        heading="403",
        message=t("The form expired. Please try again."),
    )


def _end_streams_on_signal(hub: LiveHub) -> Callable[[], None]:
    """Chain SIGINT/SIGTERM so open live streams end at once when the server is asked to stop (the
    server's own handler still runs): otherwise it would wait for every console tab to hang up.
    Returns the function that restores the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    saved: dict[signal.Signals, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        prev = signal.getsignal(sig)
        if not callable(prev):
            continue

        def handler(signum: int, frame: Any, prev: Any = prev) -> None:
            hub.close_streams()
            prev(signum, frame)

        saved[sig] = prev
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, prev in saved.items():
            signal.signal(sig, prev)

    return restore


def install(app: FastAPI) -> None:
    """Add the console to the gateway app: routes, error pages, and — at start-up, once the runtime
    exists — the first owner account and the live feed hooked into the service's listeners."""
    app.include_router(web_router)
    app.add_exception_handler(SignInFirst, _sign_in_first)
    app.add_exception_handler(PageForbidden, _forbidden)
    app.add_exception_handler(CsrfFailed, _csrf)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(a: FastAPI) -> AsyncIterator[Any]:
        async with inner(a) as state:
            rt = a.state.rt
            if ensure_owner(rt.db, rt.settings.var_dir):
                log.warning(
                    "console: sign in at http://%s:%d/console as 'owner' with the password in %s",
                    rt.settings.http_host,
                    rt.settings.http_port,
                    rt.settings.var_dir / "owner-password.txt",
                )
            hub = LiveHub(rt.engine, asyncio.get_running_loop(), rt.service.transport.render)
            hub.start()
            a.state.live_hub = hub
            rt.service.listeners.append(hub.listener)
            restore = _end_streams_on_signal(hub)
            try:
                yield state
            finally:
                restore()
                if hub.listener in rt.service.listeners:
                    rt.service.listeners.remove(hub.listener)
                await hub.stop()

    app.router.lifespan_context = lifespan
