# Where a device scans: its site, gate and time zone, registered on first sight and cached per device.
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from zoneinfo import ZoneInfo

from gateway.domain.identifiers import reserved_device
from gateway.domain.ratelimit import TokenBuckets
from gateway.domain.requests import Place
from gateway.services.ports.database import Tx

log = logging.getLogger(__name__)


def load_place(
    tx: Tx,
    device: str,
    auto_site: str,
    now: float,
    default_tz: str,
    may_register: Callable[[], bool] = lambda: True,
) -> Place | None:
    """The device's site and gate; registers an unknown device at `auto_site` (None when refused, also
    when `may_register` says no: minting device ids must not multiply per-device limits)."""
    row = tx.devices.where(device)
    if row is not None:
        site_id, gate, zone, user = row
        return Place(site_id, gate or device, ZoneInfo(zone or default_tz), user)
    if not auto_site or reserved_device(device):
        return None
    if not may_register():
        log.warning("device %s not registered: too many new devices at once", device)
        return None
    site = tx.sites.by_slug(auto_site)
    site_id, tz = site if site is not None else (None, default_tz)
    tx.devices.register(device, site_id, now)
    log.info("registered new device %s at site %s", device, auto_site)
    return Place(site_id, device, ZoneInfo(tz))


class PlaceCache:
    """device → Place, looked up (or registered) once; dropped whenever devices, sites or a batch change.

    Why drop it after a failed batch: a registration made in a rolled-back transaction is gone too.
    """

    def __init__(self, auto_site: str, default_tz: str, per_minute: float = 0.0, burst: float = 20.0) -> None:
        self.auto_site = auto_site
        self.default_tz = default_tz
        self._places: dict[str, Place] = {}
        # New devices, one bucket for all (per_minute 0: no limit; the gateway's setting gives one).
        self._new = TokenBuckets(per_minute / 60, max(burst, per_minute * 2))

    def _may_register(self) -> bool:
        return self._new.allow("new", time.monotonic())

    def get(self, tx: Tx, device: str, now: float) -> Place | None:
        found = self._places.get(device)
        if found is None:
            found = load_place(tx, device, self.auto_site, now, self.default_tz, self._may_register)
            if found is not None:
                self._places[device] = found
        return found

    def register(self, tx: Tx, device: str, now: float) -> Place | None:
        """Look the device up, registering it when unknown (not cached: a status, not a scan)."""
        return load_place(tx, device, self.auto_site, now, self.default_tz, self._may_register)

    def register_many(self, tx: Tx, devices: list[str], now: float) -> list[str]:
        """Register devices found unknown by a status write at the auto-registration site, within the
        rate of new devices (not cached: statuses, not scans); the ids registered.

        Why not `register` per device: the site is looked up once for all of them, and the device
        is known to be missing (a concurrent registration of it is no error either way)."""
        if not self.auto_site:
            return []
        site = tx.sites.by_slug(self.auto_site)
        site_id = site[0] if site is not None else None
        done: list[str] = []
        for device in devices:
            if reserved_device(device):
                continue
            if not self._may_register():
                log.warning("device %s not registered: too many new devices at once", device)
                continue
            tx.devices.register(device, site_id, now)
            log.info("registered new device %s at site %s", device, self.auto_site)
            done.append(device)
        return done

    def signed(self, device: str, place: Place, user: str | None) -> None:
        """Remember who is signed in on the device (its later scans carry the name)."""
        self._places[device] = replace(place, user=user)

    def forget(self) -> None:
        self._places = {}
