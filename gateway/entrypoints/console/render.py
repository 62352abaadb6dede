# Page rendering: the Jinja2 environment, per-request language, the signed-in person and the nav bar.
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from gateway.adapters.db.models import Site
from gateway.domain.roles import Person
from gateway.entrypoints.console.i18n import LANG_COOKIE, pick_lang, translator

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))

# (path, label, lowest role that sees it)
NAV = [
    ("/console/live", "Live", "supervisor"),
    ("/console/redeem", "Redeem", "verifier"),
    ("/console/orders", "Orders", "manager"),
    ("/console/devices", "Devices", "manager"),
    ("/console/updates", "Updates", "manager"),
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


class SiteClock:
    """Formats a time in the zone of the site its row belongs to (`site` = slug), the gateway's TIMEZONE
    only for rows without a site. The sites' zones are read once per page, on first use."""

    def __init__(self, request: Request, fallback: ZoneInfo) -> None:
        self.request = request
        self.fallback = fallback
        self.zones: dict[str, ZoneInfo] | None = None

    def zone(self, site: str | None) -> ZoneInfo:
        if not site:
            return self.fallback
        if self.zones is None:
            with self.request.app.state.rt.engine.connect() as c:
                self.zones = {slug: ZoneInfo(tz) for slug, tz in c.execute(select(Site.slug, Site.timezone))}
        return self.zones.get(site, self.fallback)

    def __call__(self, t: float | None, seconds: bool = True, site: str | None = None) -> str:
        return fmt_ts(t, self.zone(site), seconds)


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
        ts=SiteClock(request, tz),
        tz_name=tz.key,
        next_url=request.url.path + (("?" + request.url.query) if request.url.query else ""),
    )
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)
