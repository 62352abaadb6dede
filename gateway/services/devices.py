# Device registry: register a device at a site and gate (scanners also self-register), and the one device list.
from __future__ import annotations

import time
from typing import Any

from pydantic import Field, field_validator

from gateway.domain.errors import ValidationFailed
from gateway.domain.identifiers import RESERVED_DEVICES, reserved_device
from gateway.domain.roles import Person
from gateway.services.inputs import StrictIn
from gateway.services.ports.database import Database


class DeviceIn(StrictIn):
    device: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")

    @field_validator("device")
    @classmethod
    def _not_reserved(cls, v: str) -> str:
        # `web-*` and the gateway's own actors name people and system actions in the ledger.
        if reserved_device(v):
            raise ValueError(f"{v!r} is reserved (web-*, {', '.join(RESERVED_DEVICES)})")
        return v

    site: str = Field(min_length=1, max_length=32)
    gate: str = Field(default="", max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$")
    mode: str = Field(default="handheld", pattern="^(handheld|turnstile)$")


def upsert_device(db: Database, d: DeviceIn) -> dict[str, Any]:
    with db.write() as tx:
        site_id = tx.sites.ids().get(d.site)
        if site_id is None:
            raise ValidationFailed(f"unknown site {d.site!r}", field="site")
        tx.devices.place(
            d.device, {"site_id": site_id, "gate": d.gate or d.device, "mode": d.mode}, time.time()
        )
    return d.model_dump()


def device_site(db: Database, device: str) -> tuple[bool, str | None]:
    """Whether the device is registered, and the slug of its site (None: not placed)."""
    with db.read() as tx:
        return tx.devices.site_of(device)


STATUS_FIELDS = ("fw", "board", "ip", "rssi", "heap", "outbox", "up")


def list_devices(
    db: Database,
    who: Person | None = None,
    site: str | None = None,
    device: str | None = None,
    now: float | None = None,
) -> list[dict[str, Any]]:
    """The one device listing (REST, fleet and console): site, gate, mode, online state, the last status
    each reported (its retained MQTT status, raw as `status` and its fields one by one), silence, alarm
    and credentials. `who` limits it to the devices that person may see (unplaced ones: managers and up)."""
    at = time.time() if now is None else now
    with db.read() as tx:
        rows = tx.devices.listing(site, device)
        alarms = tx.alarms.open_devices()
    out = []
    for dev, slug, gate, mode, online, last_seen, status, board, gen, revoked in rows:
        if who is not None and not who.sees_site(slug):
            continue
        st = status or {}
        view: dict[str, Any] = {
            "device": dev,
            "site": slug,
            "gate": gate,
            "mode": mode,
            "online": bool(online),
            "last_seen": last_seen,
            "silent_s": None if last_seen is None else round(at - last_seen, 1),
            "alarm": dev in alarms,
            "credentials": "none" if gen is None else ("revoked" if revoked else "active"),
            "generation": gen,
            "status": status,
        }
        for key in STATUS_FIELDS:
            view[key] = st.get(key)
        view["board"] = view["board"] or board or None
        out.append(view)
    return out
