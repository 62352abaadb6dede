# Decodes camera frames off the paho thread and off the redemption loop; a read code enters that one path.
from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.adapters.camera.decode import BadFrame, decode, gray_from_bytes
from gateway.adapters.camera.frame import BadHeader, hint_payload, parse_frame, scan_payload
from gateway.adapters.mqtt.contract import hint_topic, scan_topic, split_topic
from gateway.services.stats import Histogram

log = logging.getLogger(__name__)

SubmitScan = Callable[[str, bytes], None]  # RedemptionService.submit_mqtt: (scan topic, scan payload)
Publish = Callable[[str, str], None]

PER_DEVICE = 2  # frames waiting per device; a newer frame pushes the oldest out (counted)
MAX_WAITING = 512  # frames waiting in all: past this the oldest device's oldest frame goes
DECODE_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0)
REMEMBER = 8  # decoded attempts remembered per device: later frames of one are not decoded again
RESEND_S = 1.0  # a later frame of a decoded attempt resends its scan at most this often (lost verdict)


@dataclass
class CameraCounters:
    frames: int = 0
    decoded: int = 0
    hints: int = 0
    several: int = 0
    dropped_old: int = 0  # pushed out by a newer frame of the same device (or the global bound)
    bad: int = 0  # header or image unreadable
    after_code: int = 0  # frames of an attempt already decoded (not decoded again)
    decode_ms_max: float = 0.0
    # Seconds per decode (every frame that reached the decoder); observed under the decoder's lock,
    # as several decoder threads finish frames at once.
    decode_s: Histogram = field(default_factory=lambda: Histogram(DECODE_BUCKETS))
    per_device_dropped: dict[str, int] = field(default_factory=dict)


@dataclass
class _Device:
    frames: deque[bytes] = field(default_factory=lambda: deque(maxlen=PER_DEVICE))
    decoded: OrderedDict[str, tuple[bytes, float]] = field(default_factory=OrderedDict)  # sid → scan, sent
    failures: deque[tuple[float, bytes]] = field(default_factory=deque)  # debug only: (when, frame)


class FrameDecoder:
    """Frames wait per device in a short queue (newest kept); worker threads decode them in memory.

    One code: its scan is handed to the redemption service exactly as a UART board's scan would be
    (same topic, same payload shape, the frame's sid), so idempotency, rules and the verdict are that
    path's. No code, or several: a hint goes back, never a verdict. Frames are not kept, except the
    last unread ones of devices in `debug` (bounded in number and age), for support.
    """

    def __init__(
        self,
        submit_scan: SubmitScan,
        publish: Publish,
        *,
        workers: int = 1,
        budget_ms: float = 22.0,
        debug: frozenset[str] = frozenset(),
        debug_keep: int = 5,
        debug_s: float = 600.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.submit_scan = submit_scan
        self.publish = publish
        self.workers = workers
        self.budget_ms = budget_ms
        self.debug = debug
        self.debug_keep = debug_keep
        self.debug_s = debug_s
        self.monotonic = monotonic
        self.counters = CameraCounters()
        self._devices: dict[str, _Device] = {}
        self._ready: deque[str] = deque()  # devices with frames waiting, each at most once
        self._busy: set[str] = set()  # devices a worker is on: one device's frames are decoded in order
        self._waiting = 0
        self._cv = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stop = False

    # -- the paho network thread: never blocks, never decodes ---------------------------------------
    def submit(self, topic: str, payload: bytes) -> None:
        parts = split_topic(topic)
        if parts is None or parts[1] != "frame":
            return
        device = parts[0]
        with self._cv:
            self.counters.frames += 1
            d = self._devices.setdefault(device, _Device())
            if len(d.frames) == PER_DEVICE:
                self._dropped(device)
            elif self._waiting >= MAX_WAITING and self._drop_oldest_elsewhere():
                pass
            else:
                self._waiting += 1
            d.frames.append(payload)
            if device not in self._ready and device not in self._busy:
                self._ready.append(device)
                self._cv.notify()

    def _dropped(self, device: str) -> None:
        c = self.counters
        c.dropped_old += 1
        c.per_device_dropped[device] = c.per_device_dropped.get(device, 0) + 1
        log.info("camera %s: frame dropped for a newer one (%d so far)", device, c.per_device_dropped[device])

    def _drop_oldest_elsewhere(self) -> bool:
        for dev in self._ready:
            frames = self._devices[dev].frames
            if frames:
                frames.popleft()
                self._dropped(dev)
                return True
        return False

    # -- workers ------------------------------------------------------------------------------------
    def start(self) -> None:
        self._stop = False
        for i in range(self.workers):
            t = threading.Thread(target=self._run, name=f"camera-decoder-{i}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 5.0) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        for t in self._threads:
            t.join(timeout)
        self._threads = []

    def _take(self) -> tuple[str, bytes] | None:
        with self._cv:
            while True:
                while not self._stop and not self._ready:
                    self._cv.wait()
                if self._stop:
                    return None
                device = self._ready.popleft()
                d = self._devices[device]
                if d.frames:  # the global bound may have emptied it
                    break
            payload = d.frames.popleft()
            self._waiting -= 1
            self._busy.add(device)
            return device, payload

    def _done(self, device: str) -> None:
        with self._cv:
            self._busy.discard(device)
            if self._devices[device].frames and device not in self._ready:
                self._ready.append(device)  # at the back: one busy camera does not starve the others
                self._cv.notify()

    def _run(self) -> None:
        while (job := self._take()) is not None:
            try:
                self.handle(*job)
            except Exception:  # a worker must survive any frame
                log.exception("camera frame from %s failed", job[0])
            finally:
                self._done(job[0])

    # -- one frame (also called directly by tests and the benchmark) --------------------------------
    def handle(self, device: str, payload: bytes) -> str:
        """Decode one frame and answer it; returns what happened (decoded, hint:<kind>, bad, after)."""
        c = self.counters
        try:
            f = parse_frame(payload)
        except BadHeader as e:
            c.bad += 1
            log.info("camera %s: frame dropped: %s", device, e)
            return "bad"
        d = self._devices.setdefault(device, _Device())
        now = self.monotonic()
        with self._cv:
            known = d.decoded.get(f.sid)
            resend = known is not None and now - known[1] >= RESEND_S
            if known is not None and resend:
                d.decoded[f.sid] = (known[0], now)
        if known is not None:
            c.after_code += 1
            if resend:  # the device still sends frames: its verdict may have been lost, ask again
                self.submit_scan(scan_topic(device), known[0])
            return "after"
        try:
            r = decode(gray_from_bytes(f.image, f.fmt, f.width, f.height), self.budget_ms)
        except BadFrame as e:
            c.bad += 1
            log.info("camera %s: frame %s/%d unreadable: %s", device, f.sid, f.n, e)
            return "bad"
        c.decode_ms_max = max(c.decode_ms_max, r.ms)
        with self._cv:
            c.decode_s.observe(r.ms / 1000)
        if r.hint is None:
            scan = scan_payload(f, r.texts[0])
            with self._cv:
                d.decoded[f.sid] = (scan, now)
                while len(d.decoded) > REMEMBER:
                    d.decoded.popitem(last=False)
            c.decoded += 1
            self.submit_scan(scan_topic(device), scan)
            return "decoded"
        c.hints += 1
        if r.hint == "one":
            c.several += 1
        self._keep_failure(device, d, payload, now)
        self.publish(hint_topic(device), hint_payload(f, r.hint))
        return "hint:" + r.hint

    # -- support: the last unread frames of devices in debug ------------------------------------------
    def _keep_failure(self, device: str, d: _Device, payload: bytes, now: float) -> None:
        if device not in self.debug:
            return
        with self._cv:
            d.failures.append((now, payload))
            while len(d.failures) > self.debug_keep:
                d.failures.popleft()
            self._expire(d, now)

    def _expire(self, d: _Device, now: float) -> None:
        while d.failures and now - d.failures[0][0] > self.debug_s:
            d.failures.popleft()

    def failures(self, device: str) -> list[tuple[float, bytes]]:
        """The kept unread frames of a device in debug, oldest first, as (age in seconds, frame payload);
        expired ones are gone."""
        d = self._devices.get(device)
        if d is None:
            return []
        with self._cv:
            now = self.monotonic()
            self._expire(d, now)
            return [(now - t, p) for t, p in d.failures]

    def health(self) -> dict[str, Any]:
        c = self.counters
        with self._cv:
            waiting = self._waiting
            kept = sum(len(d.failures) for d in self._devices.values())
        return {
            "frames": c.frames,
            "decoded": c.decoded,
            "hints": c.hints,
            "several": c.several,
            "dropped_old": c.dropped_old,
            "bad": c.bad,
            "after_code": c.after_code,
            "decode_ms_max": round(c.decode_ms_max, 1),
            "waiting": waiting,
            "kept_for_debug": kept,
        }
