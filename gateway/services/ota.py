# Over-the-air updates, gateway side: bundles checked at upload, roll-outs per device/site/fleet, chunks
# served on a device's request (only what is rolled out to it), progress and alarms from device statuses.
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.domain import ota
from gateway.domain.errors import Conflict, NotFound, ValidationFailed
from gateway.domain.ota import Rollout

log = logging.getLogger(__name__)


class OtaStore(Protocol):
    """Where bundles and roll-outs are kept (adapters/db/repositories/ota.py)."""

    def add_bundle(self, m: ota.Manifest, files: dict[str, bytes], at: float, by: str) -> bool:
        """Store a checked bundle; False when that version is already stored (nothing written)."""

    def bundles(self) -> list[dict[str, Any]]: ...

    def manifest(self, version: str) -> bytes | None: ...

    def files(self, version: str) -> dict[str, bytes]: ...

    def targets(self, device: str | None, site: str | None) -> list[tuple[str, str | None]]:
        """(device, site) of the non-revoked devices named: one device, a site's, or all (both None)."""

    def start(self, devices: list[str], version: str, at: float, by: str) -> None:
        """A new roll-out for each device (replacing its last one, clearing its update alarm), audited."""

    def current(self, device: str) -> Rollout | None: ...

    def record(self, device: str, version: str, p: ota.Progress, at: float) -> None:
        """Move the device's roll-out of `version` on (not a newer one started meanwhile by a person);
        a failed or rolled-back one opens an alarm and is audited."""

    def view(self, site: str | None) -> list[dict[str, Any]]:
        """Every device (of `site`) with its site, running firmware, online flag and roll-out."""

    def alarms(self) -> int:
        """Update alarms open now."""


class OtaLink(Protocol):
    """How a device gets its part (adapters/mqtt/ota_wire.py): a header and up to CHUNK_MAX bytes."""

    def send(self, device: str, header: dict[str, Any], data: bytes) -> None: ...


@dataclass
class OtaCounters:
    chunks: int = 0
    bytes: int = 0
    refused: int = 0  # requests for something not rolled out to the device


class OtaService:
    """Device messages (status, chunk requests) are queued by the MQTT thread and handled on this
    service's own thread: a database write or a chunk read never holds up paho's network loop."""

    def __init__(
        self, store: OtaStore, link: OtaLink, key: bytes, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.link = link
        self.key = key  # VAR_DIR/ota-key: signs bundles (checked at upload) and derives device keys
        self.clock = clock
        self.counters = OtaCounters()
        self.q: queue.Queue[tuple[str, str, Any]] = queue.Queue(maxsize=2000)
        self._cache: dict[str, tuple[bytes, dict[str, bytes]]] = {}  # version -> (manifest, files)
        self._thread: threading.Thread | None = None

    # -- people (REST, console) ---------------------------------------------------------------------
    def upload(self, members: dict[str, bytes], by: str) -> dict[str, Any]:
        try:
            m = ota.check_bundle(members, self.key)
        except ota.BundleError as err:
            raise ValidationFailed(f"bundle refused: {err}") from err
        files = {p: members[p] for p in m.files}
        if not self.store.add_bundle(m, files, self.clock(), by):
            raise Conflict(f"bundle {m.version} is already uploaded", version=m.version)
        return {"version": m.version, "files": len(m.files), "size": m.total}

    def bundles(self) -> list[dict[str, Any]]:
        return self.store.bundles()

    def roll_out(self, version: str, devices: list[tuple[str, str | None]], by: str) -> dict[str, Any]:
        """Roll `version` out to `devices` (already checked against the caller's sites). Each one is
        offered the update; it downloads when idle and reboots into it only when idle (device side)."""
        if self.store.manifest(version) is None:
            raise NotFound(f"no bundle {version!r}", version=version)
        names = [d for d, _ in devices]
        if not names:
            raise ValidationFailed("no device to update there")
        self.store.start(names, version, self.clock(), by)
        raw = self.store.manifest(version) or b""
        for d in names:
            self._offer(d, version, raw)
        return {"version": version, "devices": names}

    def targets(self, device: str | None = None, site: str | None = None) -> list[tuple[str, str | None]]:
        found = self.store.targets(device, site)
        if device is not None and not found:
            raise NotFound(f"unknown device {device!r}", device=device)
        return found

    def view(self, site: str | None = None) -> list[dict[str, Any]]:
        return self.store.view(site)

    def summary(self) -> tuple[dict[str, int], int]:
        """(roll-outs by state, update alarms open): for /metrics."""
        states = dict.fromkeys(ota.STATES, 0)
        for d in self.store.view(None):
            if d["rollout"]:
                states[d["rollout"]["state"]] = states.get(d["rollout"]["state"], 0) + 1
        return states, self.store.alarms()

    def device_key(self, device: str) -> str:
        """For provisioning: the key this device checks manifests with (hex, in its config.json)."""
        return ota.device_key(self.key, device).hex()

    # -- devices (MQTT) -----------------------------------------------------------------------------
    def submit_status(self, device: str, payload: bytes) -> None:
        self._put(("status", device, payload))

    def submit_request(self, device: str, req: dict[str, Any]) -> None:
        self._put(("req", device, req))

    def _put(self, item: tuple[str, str, Any]) -> None:
        try:
            self.q.put_nowait(item)
        except queue.Full:  # a device asks again after its timeout; statuses come every heartbeat
            log.warning("ota queue full: dropped a %s from %s", item[0], item[1])

    def handle(self, kind: str, device: str, arg: Any) -> None:
        if kind == "status":
            self.on_status(device, arg)
        else:
            self.on_request(device, arg)

    def on_status(self, device: str, payload: bytes) -> None:
        try:
            doc = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            return
        if not isinstance(doc, dict) or doc.get("state") != "online":
            return
        cur = self.store.current(device)
        if cur is None:
            return
        report = doc.get("ota")
        p = ota.progress(cur.state, cur.version, doc.get("fw"), report)
        if p is not None and p != ota.Progress(cur.state, cur.done, cur.total, cur.detail):
            self.store.record(device, cur.version, p, self.clock())
            if p.state in ota.ALARMING:
                log.warning("ALARM: update of %s to %s %s: %s", device, cur.version, p.state, p.detail)
        if ota.wants_offer(p.state if p else cur.state, report):
            self._offer(device, cur.version, self.store.manifest(cur.version) or b"")

    def on_request(self, device: str, req: dict[str, Any]) -> None:
        """One chunk for the device: only of the version rolled out to it, while that roll-out runs."""
        ver, path, off = req["ver"], req["f"], req["o"]
        n = min(req["n"], ota.CHUNK_MAX)
        cur = self.store.current(device)
        if cur is None or cur.version != ver or cur.state not in (ota.PENDING, ota.DOWNLOADING):
            self.counters.refused += 1
            self.link.send(device, {"ver": ver, "f": path, "o": off, "err": "not rolled out"}, b"")
            return
        raw, files = self._bundle(ver)
        data = raw if path == "" else files.get(path)
        if data is None:
            self.counters.refused += 1
            self.link.send(device, {"ver": ver, "f": path, "o": off, "err": "no such file"}, b"")
            return
        head: dict[str, Any] = {"ver": ver, "f": path, "o": off, "t": len(data)}
        if path == "":
            head["sig"] = ota.sign(ota.device_key(self.key, device), raw)
        if cur.state == ota.PENDING:
            self.store.record(device, ver, ota.Progress(ota.DOWNLOADING, 0, cur.total), self.clock())
        chunk = data[off : off + n]
        self.counters.chunks += 1
        self.counters.bytes += len(chunk)
        self.link.send(device, head, chunk)

    def _bundle(self, version: str) -> tuple[bytes, dict[str, bytes]]:
        hit = self._cache.get(version)
        if hit is None:
            hit = (self.store.manifest(version) or b"", self.store.files(version))
            if len(self._cache) >= 2:  # a roll-out serves one version, rarely two at once
                self._cache.pop(next(iter(self._cache)))
            self._cache[version] = hit
        return hit

    def _offer(self, device: str, version: str, raw: bytes) -> None:
        self.link.send(device, {"ver": version, "offer": True, "t": len(raw)}, b"")

    # -- the thread ---------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ota", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self.q.put(("stop", "", None))
            self._thread.join(5)
            self._thread = None

    def _run(self) -> None:
        while True:
            kind, device, arg = self.q.get()
            if kind == "stop":
                return
            try:
                self.handle(kind, device, arg)
            except Exception:  # one bad message must not end updates for the fleet
                log.exception("ota: %s from %s failed", kind, device)
