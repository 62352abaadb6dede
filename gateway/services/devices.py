# Device registry: register a device at a site and gate (scanners also self-register on first contact).
from __future__ import annotations

import time
from typing import Any

from pydantic import Field, field_validator
from sqlalchemy import Engine, insert, or_, select, update

from gateway.adapters.db.engine import writer
from gateway.adapters.db.models import Device, Site
from gateway.adapters.mqtt.contract import RESERVED_DEVICES, reserved_device
from gateway.domain.errors import ValidationFailed
from gateway.services.inputs import StrictIn


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


def upsert_device(engine: Engine, d: DeviceIn) -> dict[str, Any]:
    with engine.connect() as c, writer(c).begin():
        site_id = c.execute(select(Site.id).where(Site.slug == d.site)).scalar()
        if site_id is None:
            raise ValidationFailed(f"unknown site {d.site!r}", field="site")
        values = {"site_id": site_id, "gate": d.gate or d.device, "mode": d.mode}
        res = c.execute(update(Device).where(Device.device_id == d.device).values(**values))
        if res.rowcount == 0:
            c.execute(
                insert(Device).values(device_id=d.device, online=False, created_at=time.time(), **values)
            )
    return d.model_dump()


def list_devices(
    engine: Engine, site_ids: list[int] | None = None, unplaced: bool = True, device: str | None = None
) -> list[dict[str, Any]]:
    """Devices with site, gate, mode and the last status each reported (its retained MQTT status).

    `site_ids` limits the list to those sites (None = all); `unplaced` keeps devices without a site.
    """
    q = (
        select(
            Device.device_id,
            Site.slug,
            Device.gate,
            Device.mode,
            Device.online,
            Device.last_seen,
            Device.status,
        )
        .select_from(Device)
        .outerjoin(Site, Site.id == Device.site_id)
        .order_by(Device.device_id)
    )
    if site_ids is not None:
        q = q.where(
            or_(Device.site_id.in_(site_ids), Device.site_id.is_(None))
            if unplaced
            else Device.site_id.in_(site_ids)
        )
    if device is not None:
        q = q.where(Device.device_id == device)
    with engine.connect() as c:
        rows = c.execute(q).all()
    return [
        {"device": d, "site": s, "gate": g, "mode": m, "online": o, "last_seen": ls, "status": st}
        for d, s, g, m, o, ls, st in rows
    ]
