# The screen/sound state machine (pure): inputs carry `now` in ms, outputs are the screen and effects.
import time
from micropython import const

BOOTING = "BOOTING"
READY = "READY"
CHECKING = "CHECKING"
OK = "OK"
DENIED = "DENIED"
OFFLINE = "OFFLINE"
ERROR = "ERROR"
OUTBOX_FULL = "OUTBOX_FULL"
MESSAGE = "MESSAGE"

_RESULTS = (OK, DENIED, ERROR, OUTBOX_FULL, MESSAGE)
_QTY_MAX = const(99)


class UI:
    """What the device shows. Effects (sounds, relay pulses) are returned as a list from each input.

    OK is only ever entered from a gateway verdict with ok=true for the scan being shown.
    """

    def __init__(self, mode, verdict_timeout_ms, result_ms, now):
        self.mode = mode
        self.verdict_timeout = verdict_timeout_ms
        self.result_ms = result_ms
        self.state = BOOTING
        self.l1 = "Hexiao"
        self.l2 = "starting"
        self.reason = ""
        self.online = False
        self.queued = 0
        self.qty = 1
        self.waiting = None  # sid of the scan on screen that still waits for its verdict
        self.since = now
        self.hold_ms = 0  # how long a result screen stays (0 = until changed)
        self.version = 0  # bumped on every change, so the display task redraws only when needed

    def _set(self, state, l1, l2, now, hold_ms=0, reason=""):
        self.state = state
        self.l1 = l1
        self.l2 = l2
        self.reason = reason
        self.since = now
        self.hold_ms = hold_ms
        self.version += 1

    def _idle(self, now):
        if self.online:
            self._set(READY, "READY", "scan a code", now)
        else:
            self._set(OFFLINE, "OFFLINE", "queued: %d" % self.queued if self.queued else "scans will queue", now)

    def booted(self, now):
        self._idle(now)
        return []

    def link(self, online, queued, now):
        self.queued = queued
        if online == self.online:
            return []
        self.online = online
        if self.state in (READY, OFFLINE, BOOTING):
            self._idle(now)
        else:
            self.version += 1  # status bar changes
        return []

    def outbox_len(self, queued):
        if queued != self.queued:
            self.queued = queued
            self.version += 1
            if self.state == OFFLINE:
                self._idle(self.since)

    def scan_queued(self, sid, code, queued, now):
        """A new scan is durable in the outbox."""
        self.queued = queued
        self.waiting = sid
        if self.online:
            self._set(CHECKING, "CHECKING...", code[:16], now, self.verdict_timeout)
            return []
        # Offline: the holder must know this is *not* an OK; the scan uploads when the link is back.
        self._set(OFFLINE, "OFFLINE", "queued: %d" % queued, now, self.result_ms)
        return [("sound", "attention")]

    def outbox_full(self, now):
        self._set(OUTBOX_FULL, "OUTBOX FULL", "scan not taken", now, self.result_ms)
        return [("sound", "error")]

    def bad_code(self, now):
        self._set(ERROR, "BAD CODE", "try again", now, self.result_ms)
        return [("sound", "error")]

    def failure(self, l1, l2, now, hold_ms=None):
        self._set(ERROR, l1, l2, now, self.result_ms if hold_ms is None else hold_ms)
        return [("sound", "error")]

    def verdict(self, v, now):
        """A verdict for a scan that was in the outbox. Shown only if it answers the scan on screen."""
        if v["sid"] != self.waiting:
            return []
        self.waiting = None
        if v["ok"] and v["reason"] == "OK":
            self._set(OK, v["l1"] or "OK", v["l2"], now, self.result_ms, "OK")
            fx = [("sound", v["sound"])]
            if self.mode == "turnstile":
                fx.append(("relay", 1))
            return fx
        state = ERROR if v["sound"] == "error" else DENIED
        self._set(state, v["l1"] or v["reason"], v["l2"], now, self.result_ms, v["reason"])
        return [("sound", v["sound"])]

    def show(self, l1, l2, secs, now):
        self._set(MESSAGE, l1, l2, now, secs * 1000)
        return []

    def button(self, name, now):
        if name == "ok":
            if self.state in _RESULTS or self.state == CHECKING:
                self._idle(now)
            return []
        if self.mode != "handheld" or self.state not in (READY, OFFLINE):
            return []
        q = self.qty + (1 if name == "up" else -1 if name == "down" else 0)
        if 1 <= q <= _QTY_MAX and q != self.qty:
            self.qty = q
            self.version += 1
        return []

    def tick(self, now):
        if self.hold_ms and time.ticks_diff(now, self.since) >= self.hold_ms:
            if self.state == CHECKING:
                # No verdict in time: the scan stays queued and is retried; tell the holder plainly.
                self._set(ERROR, "NO ANSWER", "retrying...", now, self.result_ms)
                return [("sound", "attention")]
            self._idle(now)
        return []
