# The fleet: device views, provisioning, commands per device and per site, and the inactivity alarm loop.
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from gateway.config import FleetSettings
from gateway.domain.errors import NotFound
from gateway.services.commands import BROKER_ACTIONS, CommandIn, check_command, encode
from gateway.services.device_auth import Credentials
from gateway.services.devices import DeviceIn, list_devices, upsert_device
from gateway.services.guessing import GUESSING, QUIET_S
from gateway.services.ports.database import Database

log = logging.getLogger(__name__)
SILENT = "silent"  # the alarm kind of a device not heard from for too long


class DeviceLink(Protocol):
    """How the fleet reaches devices (the MQTT adapter implements it: adapters/mqtt/transport.py)."""

    def command(self, device: str, payload: str) -> None:
        """Send one command document (never retained: a device must not act on it again at boot)."""

    def mark_offline(self, device: str) -> None:
        """Show the device offline as its last will would (the broker drops a revoked one silently)."""


def silence_changes(
    seen: dict[str, float | None], open_alarms: set[str], now: float, silence_s: float
) -> tuple[list[str], list[str]]:
    """Which alarms to open and which to clear. `seen` maps watched devices to their last-seen time.

    A device never heard from (None) raises nothing: it has not been installed yet. A device no longer
    watched (revoked, deleted) has its alarm cleared.
    """
    to_open = sorted(
        d for d, t in seen.items() if t is not None and now - t > silence_s and d not in open_alarms
    )
    to_clear = sorted(
        d
        for d in open_alarms
        if d not in seen or (seen[d] is not None and now - (seen[d] or 0.0) <= silence_s)
    )
    return to_open, to_clear


class Fleet:
    def __init__(
        self,
        db: Database,
        link: DeviceLink,
        credentials: Credentials,
        settings: FleetSettings,
        broker: dict[str, Any],
        forget_places: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        # Whether this process raises the inactivity alarms: one elected worker of several (bootstrap).
        self.leader: Callable[[], bool] = lambda: True
        self.link = link
        self.credentials = credentials
        self.settings = settings
        self.broker = broker  # {"host", "port", "device_auth"}: what a device should be told
        self.forget_places = forget_places
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- provisioning -------------------------------------------------------------------------------
    def provision(
        self, device: str, site: str, gate: str, mode: str, board: str, by: str = "api"
    ) -> dict[str, Any]:
        """Register (or re-register) a device and issue it a fresh MQTT secret, returned only here.
        Audited under `by` (the authenticated caller), like every command."""
        self.credentials.check_name(device)
        upsert_device(self.db, DeviceIn(device=device, site=site, gate=gate, mode=mode))
        self.forget_places()
        secret, generation, rotated = self.credentials.issue(device, board)
        with self.db.write() as tx:
            reason = f"device {device} at {site}/{gate or device} ({mode}, {board}), credential {generation}"
            tx.audit.add(self.clock(), by[:64], "provision", reason)
        return {
            "device": device,
            "site": site,
            "gate": gate or device,
            "mode": mode,
            "board": board,
            "generation": generation,
            "rotated": rotated,
            "mqtt": {**self.broker, "username": device, "password": secret},
        }

    def rotate(self, device: str) -> dict[str, Any]:
        self._device_row(device)
        secret, generation, _ = self.credentials.issue(device)
        return {"device": device, "generation": generation, "mqtt": {"username": device, "password": secret}}

    # -- commands -----------------------------------------------------------------------------------
    def command(self, device: str, body: CommandIn, source: str = "api") -> dict[str, Any]:
        args = check_command(body)
        self._device_row(device)
        return self._apply(device, body.cmd, args, source)

    def site_command(self, slug: str, body: CommandIn, source: str = "api") -> dict[str, Any]:
        args = check_command(body)
        with self.db.read() as tx:
            site_id = tx.sites.ids().get(slug)
            if site_id is None:
                raise NotFound(f"unknown site {slug!r}", site=slug)
            devices = tx.devices.at_site(site_id)
        results = [self._apply(d, body.cmd, args, f"site:{slug} {source}"[:64]) for d in devices]
        return {"site": slug, "cmd": body.cmd, "devices": results}

    def _apply(self, device: str, cmd: str, args: dict[str, Any], source: str) -> dict[str, Any]:
        if cmd == "revoke":
            out = self.credentials.revoke(device)
            # Mosquitto (2.0.11, seen in the tests) drops the connection without delivering the device's
            # will, so the gateway marks the device offline itself (retained, as the will would be).
            self.link.mark_offline(device)
        elif cmd == "rotate":
            out = self.rotate(device)
        else:
            if cmd == "set_mode":
                with self.db.write() as tx:
                    tx.devices.set_mode(device, args["mode"])
                self.forget_places()
            self.link.command(device, encode(cmd, args))
            out = {"device": device, "cmd": cmd, "args": args, "sent": True}
        logged_args = None if cmd in BROKER_ACTIONS else args
        with self.db.write() as tx:
            tx.devices.record_command(device, cmd, logged_args, source[:64], self.clock())
        return out

    def history(self, device: str, limit: int = 50) -> list[dict[str, Any]]:
        with self.db.read() as tx:
            return tx.devices.commands(device, limit)

    # -- views --------------------------------------------------------------------------------------
    def _device_row(self, device: str) -> None:
        with self.db.read() as tx:
            if not tx.devices.exists(device):
                raise NotFound(f"unknown device {device!r}", device=device)

    def devices(self, site: str | None = None, device: str | None = None) -> list[dict[str, Any]]:
        return list_devices(self.db, site=site, device=device, now=self.clock())

    def device(self, device: str) -> dict[str, Any]:
        found = self.devices(device=device)
        if not found:
            raise NotFound(f"unknown device {device!r}", device=device)
        view = found[0]
        view["commands"] = self.history(device, 20)
        return view

    # -- inactivity alarms --------------------------------------------------------------------------
    def check_silence(self, now: float | None = None) -> tuple[list[str], list[str]]:
        now = self.clock() if now is None else now
        with self.db.write() as tx:
            seen = tx.devices.last_seen()
            open_alarms = tx.alarms.open_devices(SILENT)
            to_open, to_clear = silence_changes(seen, open_alarms, now, self.settings.fleet_silence_s)
            for d in to_open:
                tx.alarms.open(d, SILENT, now, seen[d])
            if to_clear:
                tx.alarms.clear(to_clear, SILENT, now)
            # Code-guessing alarms (services/guessing.py) end after a quiet hour.
            tx.alarms.clear_stale(GUESSING, now - QUIET_S, now)
        for d in to_open:
            log.warning("ALARM: device %s silent for more than %.0f s", d, self.settings.fleet_silence_s)
        for d in to_clear:
            log.info("device %s heard again; alarm cleared", d)
        return to_open, to_clear

    def alarms(self, include_cleared: bool = False, limit: int = 200) -> list[dict[str, Any]]:
        with self.db.read() as tx:
            return tx.alarms.listing(include_cleared, limit)

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, name="fleet-alarms", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _watch(self) -> None:
        while not self._stop.wait(self.settings.fleet_check_s):
            if not self.leader():
                continue
            try:
                self.check_silence()
            except Exception:  # the watcher must outlive a database hiccup
                log.exception("inactivity check failed")
