# Console pages for supervisors and managers: Live (with SSE), Orders, Devices, Reports, CSV export.
from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from gateway.domain.errors import HexiaoError, NotFound, Unavailable
from gateway.domain.roles import Person
from gateway.domain.verdict import REASONS
from gateway.entrypoints.console.chart import chart_svg
from gateway.entrypoints.console.guard import CONSOLE, PageForbidden, rt_of
from gateway.entrypoints.console.i18n import translator
from gateway.entrypoints.console.live import LiveHub
from gateway.entrypoints.console.render import lang_of, page, tz_of
from gateway.entrypoints.http.auth import caller, order_looked_up
from gateway.entrypoints.qr import write_qr
from gateway.services import adjustments as adjust
from gateway.services import queries
from gateway.services import reports as ledger_reports
from gateway.services import settlement as settlement_report
from gateway.services.commands import CommandIn
from gateway.services.devices import list_devices
from gateway.services.guessing import RateLimited
from gateway.services.redemption_log import RedemptionFilter, export_csv

router = APIRouter()


def _labels(request: Request) -> str:
    t = translator(lang_of(request))
    return json.dumps(
        {
            "connected": t("connected"),
            "reconnecting": t("reconnecting…"),
            "reasons": {r: t(r) for r in REASONS},
        },
        ensure_ascii=False,
    )


def hub_of(request: Request) -> LiveHub:
    hub: LiveHub = request.app.state.live_hub
    return hub


# -- Live ---------------------------------------------------------------------------------------------
@router.get("/console/live", include_in_schema=False)
def live(request: Request, person: Person = Depends(caller("supervisor", CONSOLE))) -> Response:
    rt = rt_of(request)
    tz = tz_of(request)
    return page(
        request,
        "live.html",
        person,
        counters=queries.today_counters(rt.db, person, tz),
        events=queries.recent(rt.db, person, 50),
        labels=_labels(request),
    )


@router.get("/console/live/events", include_in_schema=False)
def live_events(
    request: Request, device: str | None = None, person: Person = Depends(caller("supervisor", CONSOLE))
) -> StreamingResponse:
    hub = hub_of(request)
    last = request.headers.get("last-event-id", "")
    sub = hub.subscribe(person, device or None, _whole(last, 2**53, least=0) if last else None)
    return StreamingResponse(
        hub.stream(sub),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


# -- Orders -------------------------------------------------------------------------------------------
@router.get("/console/orders", include_in_schema=False)
def orders(
    request: Request, q: str = "", status: str = "", person: Person = Depends(caller("manager", CONSOLE))
) -> Response:
    found = queries.search_orders(
        rt_of(request).db,
        person,
        q.strip()[:128],
        status if status in ("active", "unpaid", "refunded", "cancelled") else "",
    )
    return page(request, "orders.html", person, q=q, status=status, orders=found)


def _order_for(request: Request, person: Person, code: str) -> dict[str, Any]:
    rt = rt_of(request)  # another site's order is a 404 and a recorded miss, like an unknown code
    return order_looked_up(rt.guard, rt.db, person, request, code, console=True)


@router.get("/console/orders/{code}", include_in_schema=False)
def order_detail(
    request: Request, code: str, done: str = "", person: Person = Depends(caller("supervisor", CONSOLE))
) -> Response:
    return _order_page(request, person, code, done=done)


def _order_page(request: Request, person: Person, code: str, status: int = 200, **ctx: Any) -> Response:
    try:
        order = _order_for(request, person, code)
    except NotFound:
        t = translator(lang_of(request))
        return page(request, "error.html", person, 404, heading="404", message=t("No order has this code."))
    except RateLimited as err:
        return page(request, "error.html", person, 429, heading="429", message=err.message)
    history = queries.history(rt_of(request).db, order["code"])
    ctx.setdefault("done", "")
    ctx.setdefault("error", "")
    return page(request, "order.html", person, status_code=status, order=order, history=history, **ctx)


def _whole(value: object, most: int, least: int = 1) -> int | None:
    """A form field as a whole number least..most (digits only: no sign, spaces or underscores)."""
    text = str(value or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > 16:
        return None
    n = int(text)
    return n if least <= n <= most else None


@router.post("/console/orders/{code}/{action}", include_in_schema=False)
async def order_action(
    request: Request, code: str, action: str, person: Person = Depends(caller("supervisor", CONSOLE))
) -> Response:
    """refund / cancel (managers) and revert (supervisors), each with a reason, audited by adjust."""
    form = await request.form()
    db = rt_of(request).db
    order = _order_for(request, person, code)
    reason = str(form.get("reason", "")).strip()[:200]
    try:
        if action == "revert":
            rid = _whole(form.get("redemption_id"), 2**53)
            if rid is None or queries.redemption_code(db, rid) != order["code"]:
                raise PageForbidden()
            if not person.may_site(queries.redemption_site(db, rid)[1]):
                raise PageForbidden()  # a redemption at another site is that site's to undo
            adjust.revert(db, rid, person.name, reason, default_tz=rt_of(request).settings.timezone)
        elif action in ("refund", "cancel") and person.at_least("manager") and person.may_site(order["site"]):
            if action == "refund":
                # The form's field is labelled "empty: all unused": an empty field is the explicit ask.
                units = str(form.get("units", "")).strip()
                n = _whole(units, 1_000_000_000) if units else None
                if units and n is None:
                    raise ValueError(units)
                adjust.refund(db, order["code"], n, person.name, reason or "refund")
            else:
                adjust.cancel(db, order["code"], person.name, reason or "cancel")
        else:
            raise PageForbidden()
    except HexiaoError as err:
        return _order_page(request, person, code, 409, error=err.message)
    except ValueError:
        return _order_page(request, person, code, 422, error="units: a whole number")
    return RedirectResponse(f"/console/orders/{order['code']}?done={action}", status_code=303)


@router.get("/console/orders/{code}/qr.png", include_in_schema=False)
def order_qr(
    request: Request, code: str, person: Person = Depends(caller("supervisor", CONSOLE))
) -> Response:
    _order_for(request, person, code)
    png, _svg = write_qr(code, rt_of(request).settings.var_dir / "qr")
    return Response(
        png.read_bytes(),
        media_type="image/png",
        headers={"Content-Disposition": f'inline; filename="{code}.png"'},
    )


# -- Devices ------------------------------------------------------------------------------------------
@router.get("/console/devices", include_in_schema=False)
def devices(request: Request, person: Person = Depends(caller("manager", CONSOLE))) -> Response:
    return page(request, "devices.html", person, devices=list_devices(rt_of(request).db, person))


@router.get("/console/devices/{device}", include_in_schema=False)
def device_detail(
    request: Request, device: str, sent: str = "", person: Person = Depends(caller("manager", CONSOLE))
) -> Response:
    rt = rt_of(request)
    found = list_devices(rt.db, person, device=device)
    if not found:
        t = translator(lang_of(request))
        return page(request, "error.html", person, 404, heading="404", message=t("Page not found."))
    if not person.may_site(found[0]["site"]):  # acting on a device needs its site (unplaced: owners)
        raise PageForbidden()
    scans = queries.recent(rt.db, person, 50, device=device)
    screen = (scans[0]["l1"], scans[0]["l2"]) if scans else ("", "")
    return page(
        request,
        "device.html",
        person,
        d=found[0],
        scans=scans,
        screen=screen,
        sent=sent,
        labels=_labels(request),
    )


# The console's buttons; each goes through the fleet's command path (validated, sent, audited).
COMMANDS = {
    "beep": CommandIn(cmd="beep", args={"sound": "ok"}),
    "status": CommandIn(cmd="status"),
    "reboot": CommandIn(cmd="reboot"),
}


@router.post("/console/devices/{device}/cmd", include_in_schema=False)
async def device_cmd(
    request: Request, device: str, person: Person = Depends(caller("manager", CONSOLE))
) -> Response:
    form = await request.form()
    rt = rt_of(request)
    cmd = COMMANDS.get(str(form.get("cmd", "")))
    found = list_devices(rt.db, person, device=device)
    if cmd is None or not found or not person.may_site(found[0]["site"]):
        raise PageForbidden()
    if rt.fleet is None:
        raise Unavailable("the fleet is not running")
    rt.fleet.command(device, cmd, source=f"console:{person.name}")
    return RedirectResponse(f"/console/devices/{device}?sent={cmd.cmd}", status_code=303)


# -- Reports ------------------------------------------------------------------------------------------
def _period(days: int, most: int, site: str, person: Person) -> int:
    """The report's number of days (1..most), once `person` may see `site` (empty: all of theirs)."""
    if site and not person.sees_site(site):
        raise PageForbidden()
    return min(max(days, 1), most)


@router.get("/console/reports", include_in_schema=False)
def reports(
    request: Request, days: int = 7, site: str = "", person: Person = Depends(caller("manager", CONSOLE))
) -> Response:
    days = _period(days, 90, site, person)
    t = translator(lang_of(request))
    db = rt_of(request).db
    tz = tz_of(request)
    data = queries.report(db, person, tz, days, site or None)
    # Per-verifier counts and the settlement over the same period and sites as the tables above; the
    # settlement also shows what is still pending after today.
    scope = replace(data["scope"], until=None)
    settle_days = rt_of(request).settings.reports.settle_days
    settlement = settlement_report.settlement_view(
        settlement_report.settlement(db, scope, time.time(), settle_days, tz.key)
    )
    sites = sorted(s for s in person.sites) if not person.all_sites else None
    since_day = datetime.fromtimestamp(data["since"], tz).date().isoformat()
    return page(
        request,
        "reports.html",
        person,
        r=data,
        days=days,
        site=site,
        sites=sites,
        verifiers=ledger_reports.counts(db, "verifier", scope, tz.key),
        settlement=settlement,
        since_day=since_day,
        chart=chart_svg(data["daily"], t("Redeemed units per day")),
    )


@router.get("/console/reports/redemptions.csv", include_in_schema=False)
def reports_csv(
    request: Request, days: int = 7, site: str = "", person: Person = Depends(caller("manager", CONSOLE))
) -> Response:
    days = _period(days, 3660, site, person)
    since = queries.midnight(tz_of(request)) - (days - 1) * 86400
    db = rt_of(request).db
    sites = [site] if site else (None if person.all_sites else sorted(person.sites))
    if sites == []:
        raise PageForbidden()

    def chunks() -> Any:
        for i, s in enumerate(sites or [None]):
            for j, chunk in enumerate(export_csv(db, RedemptionFilter(site=s, since=since))):
                if i > 0 and j == 0:
                    continue  # one header row for the whole file
                yield chunk

    return StreamingResponse(
        chunks(),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="redemptions.csv"'},
    )
