# Console page of over-the-air updates: bundles, every device's firmware and roll-out, upload and roll-out forms.
from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from gateway.domain.errors import HexiaoError, Unavailable
from gateway.domain.roles import Person
from gateway.entrypoints.console.guard import CONSOLE, rt_of
from gateway.entrypoints.console.render import page
from gateway.entrypoints.http.auth import caller
from gateway.entrypoints.http.routes.ota import RolloutIn, read_archive, roll_out
from gateway.services.ota import OtaService

router = APIRouter()


def _svc(request: Request) -> OtaService:
    svc = rt_of(request).ota
    if svc is None:
        raise Unavailable("over-the-air updates are not running")
    return svc


def _page(request: Request, person: Person, status: int = 200, note: str = "", error: str = "") -> Response:
    svc = _svc(request)
    devices = [d for d in svc.view() if person.sees_site(d["site"])]
    sites = sorted({d["site"] for d in devices if d["site"] and person.may_site(d["site"])})
    alarms = [d for d in devices if d["rollout"] and d["rollout"]["state"] in ("failed", "rolled_back")]
    return page(
        request,
        "updates.html",
        person,
        status,
        bundles=svc.bundles(),
        devices=devices,
        sites=sites,
        alarms=alarms,
        note=note,
        error=error,
    )


@router.get("/console/updates", include_in_schema=False)
def updates(
    request: Request, note: str = "", person: Person = Depends(caller("manager", CONSOLE))
) -> Response:
    return _page(request, person, note=note[:120])


@router.post("/console/updates/upload", include_in_schema=False)
async def upload(request: Request, person: Person = Depends(caller("owner", CONSOLE))) -> Response:
    form = await request.form()
    f = form.get("bundle")
    try:
        body = await f.read() if isinstance(f, UploadFile) else b""
        out = _svc(request).upload(read_archive(body), by=f"console:{person.name}")
    except HexiaoError as err:
        return _page(request, person, err.http_status, error=err.message)
    return RedirectResponse(f"/console/updates?note=uploaded+{out['version']}", status_code=303)


@router.post("/console/updates/rollout", include_in_schema=False)
async def rollout(request: Request, person: Person = Depends(caller("manager", CONSOLE))) -> Response:
    form = await request.form()
    kind, _, name = str(form.get("target", "")).partition(":")
    fields: dict[str, object] = {"version": str(form.get("version", ""))}
    if kind == "all":
        fields["all"] = True
    elif kind in ("device", "site"):
        fields[kind] = name
    try:
        body = RolloutIn(**fields)  # type: ignore[arg-type]
    except ValidationError:
        return _page(request, person, 400, error="Pick a bundle and where to roll it out.")
    try:
        out = roll_out(_svc(request), person, body)
    except HexiaoError as err:
        return _page(request, person, err.http_status, error=err.message)
    return RedirectResponse(
        f"/console/updates?note=rolled+out+{body.version}+to+{len(out['devices'])}+devices", status_code=303
    )
