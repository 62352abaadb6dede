# REST endpoints of the fleet (/api/fleet/...): device list, provisioning, commands, revocation, alarms.
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import Field

from gateway.domain.roles import Person
from gateway.entrypoints.http.auth import caller, require_site
from gateway.entrypoints.http.deps import running
from gateway.services.accounts import person_named
from gateway.services.commands import CommandIn
from gateway.services.fleet import Fleet
from gateway.services.inputs import StrictIn

router = APIRouter(prefix="/api/fleet", tags=["fleet"])

DEVICE_PATH = r"^[A-Za-z0-9_-]{1,32}$"


def _fleet(request: Request) -> Fleet:
    fleet: Fleet = running(request, "fleet", Fleet, "the fleet")
    return fleet


F = Annotated[Fleet, Depends(_fleet)]
# Seeing devices is for supervisors and up; anything that issues, rotates or revokes credentials or
# sends commands is for managers and owners (a lost scanner must be locked out by someone accountable).
# Credentials are handed out to people who signed in or hold a token (the local token is an owner).
Viewer = Annotated[Person, Depends(caller("supervisor"))]
Manager = Annotated[Person, Depends(caller("manager"))]


DevicePath = Annotated[str, Path(pattern=DEVICE_PATH)]
SitePath = Annotated[str, Path(min_length=1, max_length=32)]


class ProvisionIn(StrictIn):
    site: str = Field(min_length=1, max_length=32)
    gate: str = Field(default="", max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$")
    mode: str = Field(default="handheld", pattern="^(handheld|turnstile)$")
    board: str = Field(default="esp32-devkitc", pattern=r"^[a-z0-9_-]{1,32}$")


def _source(who: Person) -> str:
    """What the command log records: the authenticated caller, never just "api"."""
    return f"api:{who.name}"


def _site_of(fleet: Fleet, device: str) -> str | None:
    found = fleet.devices(device=device)
    return found[0]["site"] if found else None


@router.get("/broker")
def broker(fleet: F, who: Viewer) -> dict[str, Any]:
    """Where devices should connect and whether the broker checks per-device logins."""
    return dict(fleet.broker)


@router.get("/devices")
def devices(
    fleet: F, who: Viewer, site: Annotated[str | None, Query(max_length=32)] = None
) -> list[dict[str, Any]]:
    """Every device with its last status (firmware, IP, RSSI, free heap, outbox), online state and alarm."""
    return [d for d in fleet.devices(site=site) if who.sees_site(d["site"])]


@router.get("/devices/{device}")
def device(fleet: F, who: Viewer, device: DevicePath) -> dict[str, Any]:
    """One device, with the last commands sent to it."""
    view = fleet.device(device)
    if not who.sees_site(view["site"]):
        require_site(who, view["site"])
    return view


@router.post("/devices/{device}/provision", status_code=201)
def provision(
    fleet: F, who: Manager, device: DevicePath, body: ProvisionIn, request: Request
) -> dict[str, Any]:
    """Register the device and issue a fresh MQTT secret (rotating any old one). The secret appears in
    this response only; the gateway keeps a PBKDF2 hash."""
    require_site(who, body.site)
    found = fleet.devices(device=device)
    if found:  # a known device needs its current site; an unplaced one (None): owners / all-sites only
        require_site(who, found[0]["site"])
    out = fleet.provision(device, body.site, body.gate, body.mode, body.board, by=_source(who))
    ota = getattr(request.app.state.rt, "ota", None)  # the device's update key (its config.json ota_key)
    return {**out, "ota_key": ota.device_key(device)} if ota is not None else out


@router.post("/devices/{device}/commands")
def command(fleet: F, who: Manager, device: DevicePath, body: CommandIn) -> dict[str, Any]:
    """beep {sound}, show {l1, l2, secs}, reboot, status, set_mode {mode}, rotate, revoke."""
    require_site(who, _site_of(fleet, device))
    return fleet.command(device, body, source=_source(who))


@router.post("/devices/{device}/revoke")
def revoke(fleet: F, who: Manager, device: DevicePath) -> dict[str, Any]:
    """Lock the device out at once: the broker drops its connection and refuses its login."""
    require_site(who, _site_of(fleet, device))
    return fleet.command(device, CommandIn(cmd="revoke"), source=_source(who))


@router.post("/sites/{site}/commands")
def site_command(fleet: F, who: Manager, site: SitePath, body: CommandIn) -> dict[str, Any]:
    """The same command for every (non-revoked) device of a site."""
    require_site(who, site)
    return fleet.site_command(site, body, source=_source(who))


@router.get("/alarms")
def alarms(fleet: F, who: Viewer, all: bool = False) -> list[dict[str, Any]]:
    """Open inactivity alarms (devices silent longer than FLEET_SILENCE_S); `all=true` adds cleared ones."""
    sites = {d["device"]: d["site"] for d in fleet.devices()}
    return [a for a in fleet.alarms(include_cleared=all) if _sees_alarm(fleet, who, sites, a["device"])]


def _sees_alarm(fleet: Fleet, who: Person, sites: dict[str, str | None], device: str) -> bool:
    """A device's alarm goes with the device's site. A guessing alarm (`web-<name>`, no device) goes
    with the sites of the person who guessed: shared sites, or all-sites people for everyone else."""
    if device in sites or not device.startswith("web-"):
        return who.sees_site(sites.get(device))
    if who.all_sites:
        return True
    guesser = person_named(fleet.db, device.removeprefix("web-"))
    return guesser is not None and not guesser.all_sites and bool(guesser.sites & who.sites)
