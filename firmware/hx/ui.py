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
PICK = "PICK"  # handheld: the order was checked, the verifier picks a quantity / an amount
PIN = "PIN"  # handheld: a verifier types a PIN to sign in

_RESULTS = (OK, DENIED, ERROR, OUTBOX_FULL, MESSAGE)
QTY_MAX = const(99)


class UI:
    """What the device shows. Effects (sounds, relay pulses) are returned as a list from each input.

    OK is only ever entered from a gateway verdict with ok=true for the scan being shown, while it is
    still shown as CHECKING (within its verdict timeout). A verdict that comes later (after NO ANSWER,
    for a scan queued offline, after the screen moved on) is never acted on: the app logs and counts it.
    """

    def __init__(self, mode, verdict_timeout_ms, result_ms, now, pick_ms=20000, turn_ms=0):
        self.mode = mode
        self.pick_ms = pick_ms  # the picker and the PIN screen give up after this long untouched
        self.turn_ms = turn_ms  # turnstile with a turn sensor: annul an OK not followed by a turn (0 = never)
        self.code = None  # the code being checked / picked for
        self.req = None  # what the awaited sid is when it is not a redemption: "check", "login", "annul"
        self.pick = None  # PICK: the hx.hand.Pick being chosen
        self.pin = ""  # PIN: digits typed so far (never logged, never drawn)
        self.digit = -1  # PIN: the digit being chosen, -1 = none yet
        self.watch = None  # turnstile: (sid, since) of the OK still waiting for its turn
        self.verdict_timeout = verdict_timeout_ms
        self.result_ms = result_ms
        self.state = BOOTING
        self.l1 = "Hexiao"
        self.l2 = "starting"
        self.reason = ""
        self.online = False
        self.queued = 0
        self.qty = 1
        self.waiting = None  # sid of the scan on screen that still waits for its verdict (see awaits)
        self.since = now
        self.hold_ms = 0  # how long a result screen stays (0 = until changed)
        self.version = 0  # bumped on every change, so the display task redraws only when needed
        self.camera = False  # a camera board whose ok button starts an attempt (hx/camera.py)

    # ---- what the screens (here and in hx/hand.py) use to change what is shown ----
    def screen(self, state, l1, l2, now, hold_ms=0, reason=""):
        """Show `state` with lines l1/l2 (logged), kept for hold_ms (0 = until changed)."""
        self.state = state
        self.l1 = l1
        self.l2 = l2
        self.reason = reason
        self.since = now
        self.hold_ms = hold_ms
        self.version += 1

    def back_to_idle(self, now):
        """READY or OFFLINE. Nothing on screen waits any more: a verdict arriving from now on is late
        (logged, not shown), and a pick or PIN being entered is forgotten."""
        self.waiting = None
        self.req = None
        self.pick = None
        self.pin = ""
        if self.online:
            self.screen(READY, "READY", "scan a code", now)
        else:
            self.screen(OFFLINE, "OFFLINE", "queued: %d" % self.queued if self.queued else "scans will queue", now)

    def show_pick(self, l1, l2, foot, now):
        """The handheld's picker screen (hx/hand.py); it gives up after pick_ms untouched."""
        self.screen(PICK, l1, l2, now, self.pick_ms, foot)

    def show_pin(self, l1, l2, foot, now):
        """The handheld's PIN screen (hx/hand.py); it gives up after pick_ms untouched."""
        self.screen(PIN, l1, l2, now, self.pick_ms, foot)

    def touch(self, now):
        """Redraw without changing the logged lines (the PIN digit being chosen); restarts the timeout."""
        self.version += 1
        self.since = now

    def booted(self, now):
        self.back_to_idle(now)
        return []

    def link(self, online, queued, now):
        """Called every display tick with the link state; returns nothing (allocates nothing)."""
        self.queued = queued
        if online == self.online:
            return
        self.online = online
        if self.state in (READY, OFFLINE, BOOTING):
            self.back_to_idle(now)
        else:
            self.version += 1  # status bar changes

    def outbox_len(self, queued):
        if queued != self.queued:
            self.queued = queued
            self.version += 1
            if self.state == OFFLINE:
                self.back_to_idle(self.since)

    def awaits(self, sid, now=None):
        """True when a verdict for `sid` may act (screen, sound, relay): it answers the scan on screen,
        still CHECKING within its timeout, or the turnstile's own annul being shown. With `now` the
        timeout is checked here too, not only by tick(): a stalled display task must not leave an
        expired CHECKING screen waiting for an OK that would open the gate for someone else."""
        if sid is None or sid != self.waiting:
            return False
        if self.state == CHECKING:
            return now is None or not self.hold_ms or time.ticks_diff(now, self.since) < self.hold_ms
        return self.req == "annul"

    def scan_queued(self, sid, code, queued, now):
        """A scan is durable in the outbox (a new one, or a rescan rejoining its queued scan)."""
        self.queued = queued
        self.req = None
        self.pick = None
        self.pin = ""
        if self.online:
            self.waiting = sid
            self.screen(CHECKING, "CHECKING...", code[:16], now, self.verdict_timeout)
            return []
        # Offline: the holder must know this is *not* an OK; the scan uploads when the link is back,
        # and its verdict then comes when nobody waits for it: it is logged, never acted on.
        self.screen(OFFLINE, "OFFLINE", "queued: %d" % queued, now, self.result_ms)
        self.waiting = None
        return [("sound", "attention")]

    def outbox_full(self, now):
        self.screen(OUTBOX_FULL, "OUTBOX FULL", "scan not taken", now, self.result_ms)
        return [("sound", "error")]

    def bad_code(self, now):
        self.screen(ERROR, "BAD CODE", "try again", now, self.result_ms)
        return [("sound", "error")]

    def failure(self, l1, l2, now, hold_ms=None):
        self.screen(ERROR, l1, l2, now, self.result_ms if hold_ms is None else hold_ms)
        return [("sound", "error")]

    def sent(self, sid, req, l1, code, now):
        """A request that is not a redemption went out (check: `code`; login, logout): wait for its answer."""
        self.waiting = sid
        self.req = req
        self.code = code
        self.pick = None
        self.pin = ""
        self.screen(CHECKING, l1, code[:16], now, self.verdict_timeout)
        return []

    def looking(self, sid, now, hold_ms):
        """A camera attempt: frames of `sid` go to the gateway; its verdict is awaited like a scan's."""
        self.waiting = sid
        self.req = "camera"
        self.code = None
        self.pick = None
        self.pin = ""
        self.screen(CHECKING, "HOLD CODE", "to the camera", now, hold_ms)
        return []

    def hint(self, sid, l1, l2, now):
        """The gateway could not read the attempt's last frame: say why, keep waiting (same timeout)."""
        if self.state != CHECKING or self.waiting != sid or self.req != "camera":
            return []
        if (l1, l2) != (self.l1, self.l2):
            self.l1 = l1
            self.l2 = l2
            self.version += 1
        return []

    def annul_queued(self, sid, queued, now):
        """The turnstile did not turn: the annul of the last OK is durable in the outbox."""
        self.queued = queued
        if self.waiting is not None:
            # The next holder's scan is on screen: its verdict (and relay pulse) must not be lost to
            # ours. The annul still uploads; its verdict is logged, not shown.
            self.version += 1
            return []
        self.waiting = sid
        self.req = "annul"
        self.screen(DENIED, "NOT PASSED", "annulling...", now, self.result_ms, "NOT_PASSED")
        return [("sound", "attention")]

    def verdict(self, v, now):
        """A verdict for a scan that was in the outbox. Shown only if it answers the scan on screen."""
        if not self.awaits(v["sid"], now):
            return []
        self.waiting = None
        req = self.req
        self.req = None
        if req == "annul":
            # Never an OK screen and never the relay: the gate stays shut, the unit came back.
            if v["ok"]:
                self.screen(DENIED, "NOT PASSED", "annulled", now, self.result_ms, "ANNULLED")
                return [("sound", "attention")]
            self.screen(ERROR, v["l1"] or v["reason"], v["l2"], now, self.result_ms, v["reason"])
            return [("sound", "error")]
        if req == "check" and v["ok"]:
            if not v.get("check") or (v.get("kind") != "value" and v.get("max") == 1):
                # No choice to make (an exit, a re-entry, a single unit left): redeem it as it is,
                # so a one-person ticket still takes one scan and no button press.
                return [("redeem", (self.code, 1, None))]
            from hx import hand  # handheld-only code, never loaded on a turnstile

            return hand.open_pick(self, v, QTY_MAX, now)
        if v["ok"] and v["reason"] == "OK":
            self.screen(OK, v["l1"] or "OK", v["l2"], now, self.result_ms, "OK")
            fx = [("sound", v["sound"])]
            if self.mode == "turnstile":
                fx.append(("relay", 1))
                if self.turn_ms:
                    self.watch = (v["sid"], now)
            return fx
        state = ERROR if v["sound"] == "error" else DENIED
        self.screen(state, v["l1"] or v["reason"], v["l2"], now, self.result_ms, v["reason"])
        return [("sound", v["sound"])]

    def show(self, l1, l2, secs, now):
        self.screen(MESSAGE, l1, l2, now, secs * 1000)
        return []

    def button(self, name, now):
        if self.state == PICK or self.state == PIN:
            from hx import hand

            return (hand.pick_button if self.state == PICK else hand.pin_button)(self, name, now)
        if name == "ok" and self.camera and self.state == READY:
            return [("look", None)]
        if name == "ok":
            # Leaving a redemption's CHECKING screen by hand is giving up on it, as NO ANSWER is: its
            # verdict no longer acts, and the holder's rescan collects it (never a second redemption).
            left = self.waiting if self.state == CHECKING and not self.req else None
            if self.state in _RESULTS or self.state == CHECKING:
                self.back_to_idle(now)
            return [("gave_up", left)] if left is not None else []
        if self.mode != "handheld":
            return []
        if name == "ok_long" and self.state in (READY, OFFLINE) + _RESULTS:
            if not self.online:
                return self.failure("NO LINK", "sign-in needs it", now)
            from hx import hand

            return hand.open_pin(self, now)
        if self.state not in (READY, OFFLINE):
            return []
        q = self.qty + (1 if name == "up" else -1 if name == "down" else 0)
        if 1 <= q <= QTY_MAX and q != self.qty:
            self.qty = q
            self.version += 1
        return []

    def turned(self, now):
        """The turnstile's rotation sensor saw a turn: the last OK was used."""
        self.watch = None

    def tick(self, now):
        """Timeouts due at `now`: their effects, or () (called every display tick: allocates nothing
        when nothing is due)."""
        fx = ()
        w = self.watch
        if w and time.ticks_diff(now, w[1]) >= self.turn_ms:
            self.watch = None
            fx = [("annul", w[0])]
        if self.hold_ms and time.ticks_diff(now, self.since) >= self.hold_ms:
            if self.state == CHECKING:
                if self.req:
                    # Nothing durable was asked (check / sign-in): the holder simply tries again.
                    l1 = "NO CODE" if self.req == "camera" else "NO ANSWER"
                    self.screen(ERROR, l1, "rescan" if self.req == "check" else "try again", now,
                              self.result_ms)
                    self.waiting = None
                    self.req = None
                    return list(fx) + [("sound", "attention")]
                # No verdict in time: the scan stays queued and is retried, but its verdict will no
                # longer open anything (whoever stands there later is not this holder). A rescan of the
                # same code rejoins the queued scan and shows its verdict.
                gave_up = self.waiting
                self.screen(ERROR, "NO ANSWER", "please rescan", now, self.result_ms)
                self.waiting = None
                return list(fx) + [("sound", "attention"), ("gave_up", gave_up)]
            self.back_to_idle(now)
        return fx
