# Device status messages persisted: online/offline, last seen, the status document of an online device.
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.domain.identifiers import DEVICE_RE, reserved_device
from gateway.services.places import PlaceCache
from gateway.services.ports.database import Tx


def apply_statuses(
    tx: Tx, statuses: Sequence[tuple[str, dict[str, Any] | None]], now: float, places: PlaceCache
) -> tuple[int, int]:
    """Record each (device, status document) in the caller's transaction; returns (recorded, unreadable).

    A status from a device not yet known registers it like a first scan would (when auto-registration
    is on), so the console lists a scanner as soon as it comes online.
    """
    recorded = unreadable = 0
    for device, doc in statuses:
        if doc is None:
            unreadable += 1
            continue
        recorded += 1
        online = doc.get("state") == "online"
        values: dict[str, Any] = {"online": online, "last_seen": now}
        if online:
            values["status"] = doc
        known = tx.devices.report(device, values)
        unknown = not known and places.auto_site and DEVICE_RE.match(device) and not reserved_device(device)
        if unknown and places.register(tx, device, now) is not None:
            tx.devices.report(device, values)
    return recorded, unreadable
