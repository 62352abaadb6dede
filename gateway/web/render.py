# Page rendering: the Jinja2 environment, per-request language, the signed-in person and the nav bar.
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from gateway.auth.roles import Person
from gateway.web.i18n import LANG_COOKIE, pick_lang, translator

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))

# (path, label, lowest role that sees it)
NAV = [
    ("/console/live", "Live", "supervisor"),
    ("/console/redeem", "Redeem", "verifier"),
    ("/console/orders", "Orders", "manager"),
    ("/console/devices", "Devices", "manager"),
    ("/console/reports", "Reports", "manager"),
    ("/console/users", "Users", "owner"),
]


def lang_of(request: Request) -> str:
    return pick_lang(request.cookies.get(LANG_COOKIE), request.headers.get("accept-language"))


def tz_of(request: Request) -> ZoneInfo:
    return ZoneInfo(request.app.state.rt.settings.timezone)


def fmt_ts(ts: float | None, tz: ZoneInfo, seconds: bool = True) -> str:
    if not ts:
        return "—"
    return datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def page(
    request: Request, name: str, person: Person | None, status_code: int = 200, **ctx: Any
) -> HTMLResponse:
    lang = lang_of(request)
    tz = tz_of(request)
    nav = [(p, label) for p, label, role in NAV if person is not None and person.at_least(role)]
    ctx.update(
        person=person,
        lang=lang,
        _=translator(lang),
        csrf=person.csrf if person else "",
        nav=nav,
        here=request.url.path,
        ts=lambda t, seconds=True: fmt_ts(t, tz, seconds),
        tz_name=tz.key,
        next_url=request.url.path + (("?" + request.url.query) if request.url.query else ""),
    )
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)
