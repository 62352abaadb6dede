# The camera concern (one asyncio task): bursts of frames to the gateway, its hints on the OLED.
import asyncio
import time

from hx import capture, protocol


class CameraTask:
    """Drives the board's camera (`capture()` in the board layer) with the pure `capture.Policy`.

    An attempt is a scan id (app.next_sid): every frame carries it, the gateway redeems the code it
    reads under it, and the verdict for it ends the attempt (shown like any verdict, only while the
    screen still waits for it). Hints for it change the screen's lines; the frames themselves are
    never kept. Offline, no attempt starts: a camera board has nothing it could queue.
    """

    def __init__(self, app, cam):
        self.app = app
        self.cam = cam
        c = app.cfg["camera"]
        self.cfg = c
        self.policy = capture.Policy(c["trigger"], c["fps"], c["burst_ms"], c["look_fps"], c["motion"],
                                     app.cfg["result_ms"])
        dev = app.cfg["device"]
        self.topic = protocol.topic(dev, "frame")
        self.topic_hint = protocol.topic(dev, "hint")
        self.sample = None
        self.recent = []  # sids of the last attempts: their verdicts are the camera's, even late ones
        self.frames = 0
        self.unsent = 0
        self.qty = 1
        self.wake = asyncio.Event()  # an attempt started: take its first frame now, not after a nap

    def owns(self, sid):
        return sid in self.recent

    def start(self, now):
        app = self.app
        if not app.ui.online:
            app.apply(app.ui.failure("OFFLINE", "camera needs link", now))
            return
        _, sid = app.next_sid()
        self.qty = app.ui.qty  # a handheld's preselected quantity (up at READY) goes with the attempt
        app.ui.qty = 1
        self.policy.start(sid, now)
        self.recent = self.recent[-3:] + [sid]
        app.apply(app.ui.looking(sid, now, self.policy.burst_ms + app.cfg["verdict_timeout_ms"]))
        self.wake.set()
        app.board.event("camera", {"sid": sid, "attempt": "start", "trigger": self.policy.trigger})

    def press(self, now):
        if self.policy.state != capture.BURST:
            self.start(now)

    def on_hint(self, payload, now):
        h = capture.read_hint(payload)
        if h is None or h[0] != self.policy.sid or self.policy.state != capture.BURST:
            return
        self.app.board.event("hint", {"sid": h[0], "hint": h[1]})
        self.app.apply(self.app.ui.hint(h[0], h[2], h[3], now))

    def on_verdict(self, v, now):
        """A verdict for one of the camera's attempts (the app asked `owns` first)."""
        app = self.app
        sid = v["sid"]
        if v["retry"]:
            # Nothing was decided: the attempt's next frames make the gateway ask again.
            app.board.event("transient", {"sid": sid, "reason": v["reason"]})
            return
        self.policy.end(sid, now)
        shown = app.ui.awaits(sid, now)
        app.board.event("verdict", {"sid": sid, "ok": v["ok"], "reason": v["reason"], "shown": shown,
                                    "frames": self.policy.n})
        if shown:
            app.apply(app.ui.verdict(v, now))
        else:
            app.late += 1
            app.board.event("late_verdict", {"sid": sid, "ok": v["ok"], "reason": v["reason"], "count": app.late})

    async def send(self, buf, now):
        p = self.policy
        c = self.cam
        head = capture.frame_head(p.sid, p.n, c.fmt, c.width, c.height, self.qty, self.app.cfg["dir"],
                                  self.app.board.unix_time())
        ok = await self.app.mqtt.publish_frame(self.topic, head, buf)
        p.sent(now)
        self.frames += 1
        if not ok:
            self.unsent += 1
        self.app.board.event("frame", {"sid": p.sid, "n": p.n - 1, "bytes": len(buf), "sent": ok})

    async def run(self):
        p = self.policy
        while True:
            now = time.ticks_ms()
            if p.state == capture.BURST and self.app.ui.waiting != p.sid:
                p.end(p.sid, now)  # the screen moved on (ok pressed, NO CODE shown): stop sending
            if p.expired(now):
                self.app.board.event("camera", {"sid": p.sid, "attempt": "no code", "frames": p.n})
            if p.frame_due(now):
                buf = await self.cam.capture()
                if buf is not None and p.state == capture.BURST:
                    await self.send(buf, time.ticks_ms())
            elif p.look_due(now):
                buf = await self.cam.capture()
                if buf is not None:
                    score, self.sample = capture.motion(self.sample, buf, self.cam.fmt)
                    if p.looked(score, time.ticks_ms()):
                        self.app.board.event("motion", {"score": score})
                        self.start(time.ticks_ms())
            self.wake.clear()
            try:
                await asyncio.wait_for_ms(self.wake.wait(), p.wait_ms(time.ticks_ms()))
            except asyncio.TimeoutError:
                pass
