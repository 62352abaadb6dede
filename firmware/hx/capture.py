# Camera capture policy (pure, `now` in ms): when a frame is taken, when an attempt starts and ends.
import json
import time
from micropython import const

IDLE = const(0)  # nothing shown: a kiosk looks for motion, a handheld waits for its button
BURST = const(1)  # an attempt: frames go to the gateway until its verdict or burst_ms
REST = const(2)  # after an attempt: no new one until rest_ms has passed (the holder steps away)

_SAMPLES = const(600)  # bytes of a grayscale frame compared for motion (every n-th pixel)


class Policy:
    """One attempt at a time. `trigger` is "button" (handheld: the holder presses ok) or "motion"
    (kiosk / turnstile: small look frames, never sent, start an attempt when the scene changes).

    An attempt is one scan id; its frames go out at `fps` for at most `burst_ms`, and it ends early
    on the gateway's verdict for that id. After it, `rest_ms` must pass and a kiosk needs a fresh
    change of scene (the baseline is the scene the attempt ended on), so a holder who keeps the code
    in front of the camera is not asked again and again.
    """

    def __init__(self, trigger, fps, burst_ms, look_fps=2, level=12, rest_ms=1500):
        self.trigger = trigger
        self.period = 1000 // fps
        self.look_period = 1000 // look_fps
        self.burst_ms = burst_ms
        self.level = level
        self.rest_ms = rest_ms
        self.state = IDLE
        self.sid = None
        self.n = 0  # frames sent in this attempt
        self.t0 = 0
        self.next = 0
        self.baseline = True  # the next look frame only sets the motion baseline

    def start(self, sid, now):
        self.state = BURST
        self.sid = sid
        self.n = 0
        self.t0 = now
        self.next = now

    def frame_due(self, now):
        return self.state == BURST and time.ticks_diff(now, self.next) >= 0 and time.ticks_diff(now, self.t0) < self.burst_ms

    def sent(self, now):
        self.n += 1
        self.next = time.ticks_add(now, self.period)

    def expired(self, now):
        """True once, when the burst ran out without a verdict (the screen says NO CODE later)."""
        if self.state == BURST and time.ticks_diff(now, self.t0) >= self.burst_ms:
            self._rest(now)
            return True
        return False

    def end(self, sid, now):
        """The gateway answered `sid` (or the screen moved on): the attempt is over."""
        if self.state == BURST and sid == self.sid:
            self._rest(now)
            return True
        return False

    def _rest(self, now):
        self.state = REST
        self.next = time.ticks_add(now, self.rest_ms)
        self.baseline = True

    def look_due(self, now):
        if self.state == REST and time.ticks_diff(now, self.next) >= 0:
            self.state = IDLE
            self.next = now
        return self.trigger == "motion" and self.state == IDLE and time.ticks_diff(now, self.next) >= 0

    def looked(self, score, now):
        """A look frame's motion score: True when it should start an attempt."""
        self.next = time.ticks_add(now, self.look_period)
        if self.baseline:
            self.baseline = False
            return False
        return score >= self.level

    def wait_ms(self, now):
        """How long the camera task may sleep before something can be due (20..250 ms)."""
        if self.state == IDLE and self.trigger != "motion":
            return 250
        return max(20, min(250, time.ticks_diff(self.next, now)))


def motion(prev, buf, fmt):
    """(score 0..255, sample): how much the scene changed since `prev` (the last sample).

    Grayscale: the mean absolute difference of every n-th pixel. JPEG has no pixels to compare
    without decoding it: the relative change of the compressed size stands in (a code, a hand or a
    phone entering the picture changes how much detail there is to compress)."""
    n = len(buf)
    if fmt == "gray":
        step = max(1, n // _SAMPLES)
        m = n // step
        sample = bytearray(m)  # MicroPython slices only with step 1: pick the pixels one by one
        for i in range(m):
            sample[i] = buf[i * step]
        if prev is None or len(prev) != len(sample):
            return 0, sample
        total = 0
        for i in range(len(sample)):
            d = sample[i] - prev[i]
            total += d if d >= 0 else -d
        return total // len(sample), sample
    if prev is None or not prev:
        return 0, n
    return min(255, abs(n - prev) * 255 // prev), n


def frame_head(sid, n, fmt, w, h, qty, direction, at):
    """The frame's header line (docs/protocol.md, "frame"); the image bytes follow it as they are."""
    doc = {"v": 1, "sid": sid, "n": n, "fmt": fmt, "w": w, "h": h, "qty": qty, "dir": direction, "at": at}
    return json.dumps(doc).encode() + b"\n"


def read_hint(payload):
    """(sid, hint, l1, l2) of a hint message, or None when it is not one."""
    try:
        d = json.loads(payload)
        sid, hint, l1, l2 = d["sid"], d["hint"], d["l1"], d["l2"]
    except (ValueError, KeyError, TypeError):
        return None
    if d.get("v") != 1 or not all(isinstance(x, str) for x in (sid, hint, l1, l2)):
        return None
    return sid, hint, l1[:16], l2[:16]
