# REST endpoints of over-the-air updates (/api/ota/...): upload a bundle, roll it out, see each device's state.
from __future__ import annotations

import io
import tarfile
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field, model_validator

from gateway.domain import ota as rules
from gateway.domain.errors import Forbidden, HexiaoError, ValidationFailed
from gateway.domain.roles import Person
from gateway.entrypoints.http.auth import caller, require_site
from gateway.entrypoints.http.deps import running
from gateway.services.inputs import StrictIn
from gateway.services.ota import OtaService

router = APIRouter(prefix="/api/ota", tags=["ota"])


def _ota(request: Request) -> OtaService:
    svc: OtaService = running(request, "ota", OtaService, "over-the-air updates")
    return svc


Ota = Annotated[OtaService, Depends(_ota)]
# Uploading is for owners: a bundle is fleet-wide (any site's devices may be given it). Rolling out is
# for managers at the devices' site; the whole fleet at once, for owners only.
Owner = Annotated[Person, Depends(caller("owner"))]
Manager = Annotated[Person, Depends(caller("manager"))]


MAX_ENTRIES = 4 * rules.MAX_FILES  # files, their folders, the manifest and its signature, with room


def read_archive(body: bytes) -> dict[str, bytes]:
    """The members of a tar archive (plain or gzip), read in memory, regular files only."""
    if not body or len(body) > rules.MAX_BUNDLE:
        raise ValidationFailed(f"bundle: a tar archive of 1..{rules.MAX_BUNDLE} bytes")
    out: dict[str, bytes] = {}
    total = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as tar:
            for n, info in enumerate(tar):
                # Folders are skipped but counted: tarfile keeps every entry it read, and a small gzip
                # holds millions of empty ones.
                if n >= MAX_ENTRIES:
                    raise ValidationFailed(f"bundle: over {MAX_ENTRIES} entries in the archive")
                if info.isdir():
                    continue
                name = info.name.removeprefix("./")
                total += info.size
                if not info.isfile() or total > rules.MAX_BUNDLE or len(out) > rules.MAX_FILES + 2:
                    raise ValidationFailed(f"bundle: {name[:100]!r} is not a plain file, or it is too big")
                f = tar.extractfile(info)
                out[name] = f.read() if f is not None else b""
    except (tarfile.TarError, EOFError, OSError) as err:
        raise ValidationFailed(f"bundle: not a tar archive ({type(err).__name__})") from err
    return out


class UnsupportedMedia(HexiaoError):
    code = "UNSUPPORTED_MEDIA_TYPE"
    http_status = 415


ARCHIVE_TYPES = ("application/x-tar", "application/gzip", "application/octet-stream")


async def archive_body(request: Request) -> bytes:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ARCHIVE_TYPES:
        # Not text/plain or a form: what a cross-site page can send without asking is never read.
        raise UnsupportedMedia("send the bundle as application/x-tar", content_type=ctype[:80])
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > rules.MAX_BUNDLE:
        raise ValidationFailed(f"bundle: over {rules.MAX_BUNDLE} bytes")
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > rules.MAX_BUNDLE:
            raise ValidationFailed(f"bundle: over {rules.MAX_BUNDLE} bytes")
    return bytes(body)


class RolloutIn(StrictIn):
    version: str = Field(min_length=1, max_length=32)
    device: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,32}$")
    site: str | None = Field(default=None, min_length=1, max_length=32)
    all: bool = False

    @model_validator(mode="after")
    def _one(self) -> RolloutIn:
        if sum((self.device is not None, self.site is not None, self.all)) != 1:
            raise ValueError("name exactly one of device, site or all")
        return self


def _who(p: Person) -> str:
    return f"api:{p.name}"


@router.post("/bundles", status_code=201)
async def upload(svc: Ota, who: Owner, request: Request) -> dict[str, Any]:
    """A bundle from `python -m tools.ota_bundle` as a tar archive (manifest.json, manifest.sig, hx/...).
    Refused unless signed with this gateway's key and every file matches its size and SHA-256."""
    return svc.upload(read_archive(await archive_body(request)), by=_who(who))


@router.get("/bundles")
def bundles(svc: Ota, who: Manager) -> list[dict[str, Any]]:
    return svc.bundles()


def roll_out(svc: OtaService, who: Person, body: RolloutIn) -> dict[str, Any]:
    """Shared by REST and the console: the caller must work at every device's site."""
    if body.all:
        if not who.all_sites:
            raise Forbidden("rolling out to every device is for owners")
        targets = svc.targets()
    elif body.site is not None:
        require_site(who, body.site)
        targets = svc.targets(site=body.site)
    else:
        targets = svc.targets(device=body.device)
        require_site(who, targets[0][1])
    return svc.roll_out(body.version, targets, by=_who(who))


@router.post("/rollouts")
def rollouts(svc: Ota, who: Manager, body: RolloutIn) -> dict[str, Any]:
    """Offer `version` to one device, a site's devices or all: each downloads it while idle, reboots into
    it only when idle, keeps it once online or rolls back by itself; progress in GET /api/ota/devices."""
    return roll_out(svc, who, body)


@router.get("/devices")
def devices(
    svc: Ota, who: Manager, site: Annotated[str | None, Query(max_length=32)] = None
) -> list[dict[str, Any]]:
    """Every device the caller may see: its running firmware and its roll-out (version, state, bytes
    done of total, why it failed). A failed or rolled-back update is also an alarm (GET /api/fleet/alarms)."""
    return [d for d in svc.view(site) if who.sees_site(d["site"])]
