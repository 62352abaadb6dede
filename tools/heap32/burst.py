# Heap of the firmware's core and a scan burst, with a fake board: run by MicroPython (any port).
# `micropython tools/heap32/burst.py <firmware dir> <flash dir> <cap>` runs it whole; on 32 bits
# tools/heap32/run.mjs (the WebAssembly port under Node.js) calls load(), app(), then step() until it
# returns False, measuring between calls: that port collects garbage only between calls into it.
# Figures: live heap (gc.mem_alloc after gc.collect) above the interpreter's own, in bytes.
import gc
import json
import os
import sys

IID = "Ab3xYz"
S = {"peak": 0, "phase": 0, "i": 0, "now": 1000, "answered": 0}


def measure():
    gc.collect()
    n = gc.mem_alloc() - S["base"]
    if n > S["peak"]:
        S["peak"] = n
    return n


def load(fw, flash, cap):
    """Import what the app runs on (the modules resident on a device)."""
    S["fw"], S["flash"], S["cap"] = fw, flash, cap
    sys.path.insert(0, fw)
    gc.collect()
    S["base"] = gc.mem_alloc()
    import framebuf  # noqa: F401

    import hx.app  # noqa: F401
    import hx.render  # noqa: F401
    import hx.ui  # noqa: F401


class Board:
    """Only the board seam is fake: events are counted, the display is a real 1 KB framebuf."""

    name = "heap-probe"

    def __init__(self, flash, cap):
        import framebuf

        self.flash = flash
        self.outbox_cap = cap
        self.n = 0
        self.buf = bytearray(1024)
        self.fb = framebuf.FrameBuffer(self.buf, 128, 64, framebuf.MONO_VLSB)

    def event(self, ev, data=None):
        self.n += 1

    def unix_time(self):
        return 1795392000

    def net_up(self):
        return True

    def net_info(self):
        return "10.0.0.9", -50

    def random(self, n):
        return os.urandom(n)


def app():
    """A flash whose outbox holds cap - 20 scans, and the App booted on it (validator unloaded)."""
    from hx import lazy
    from hx.app import App
    from hx.outbox import entry_name

    flash, cap = S["flash"], S["cap"]
    for d in (flash, flash + "/outbox"):
        try:
            os.mkdir(d)
        except OSError:
            pass
    for seq in range(1, max(0, cap - 20) + 1):
        scan = {
            "v": 1,
            "sid": "%s-1-%x" % (IID, seq),
            "code": "Q-%d" % seq,
            "qty": 1,
            "dir": "in",
            "at": 1795392000,
        }
        with open(flash + "/outbox/" + entry_name(IID, 1, seq), "w") as f:
            f.write(json.dumps(scan))
    cfg = lazy.run("hx.config", "validate", {"device": "dev-1", "mode": "turnstile", "outbox_max": cap})
    S["board"] = Board(flash, cap)
    S["app"] = App(S["board"], cfg, 2, IID)
    S["app"].ui.link(False, len(S["app"].outbox), S["now"])  # offline: the burst queues


def _verdict(sid):
    return json.dumps(
        {
            "v": 1,
            "sid": sid,
            "ok": True,
            "reason": "OK",
            "l1": "OK  Day Pass",
            "l2": "0 of 1 left",
            "detail": "",
            "sound": "ok",
            "left": 0,
        }
    ).encode()


def step():
    """One step of the burst: 25 scans offline (20 fill the outbox, 5 are refused), then the link comes
    back and verdicts answer the in-flight window until 40 were answered. False when done."""
    from hx.render import draw

    a, b = S["app"], S["board"]
    if S["i"] < 25:
        S["now"] += 300
        a.on_line(b"GOOD-B%d\r\n" % S["i"], S["now"])
        S["i"] += 1
        if S["i"] == 25:
            S["full"] = len(a.outbox)
            a.ui.link(True, S["full"], S["now"])
    elif S["answered"] < 40:
        S["now"] += 50
        for sid, _payload in a.outbox.due(S["now"]):
            a.on_verdict(_verdict(sid), S["now"])
            S["answered"] += 1
        a.ui.tick(S["now"])
    else:
        return False
    draw(b.fb, a.ui, "G1")
    return True


def report(modules, started):
    a = S["app"]
    return json.dumps(
        {
            "bits": 64 if sys.maxsize > 2**32 else 32,
            "modules": modules,
            "app_with_outbox": started,
            "peak": S["peak"],
            "outbox_full": S["full"],
            "cap": S["cap"],
            "refused": a.outbox.full_count,
            "left": len(a.outbox),
        }
    )


if __name__ == "__main__" and len(getattr(sys, "argv", ())) > 3:  # run.mjs calls the steps itself
    load(sys.argv[1], sys.argv[2], int(sys.argv[3]))
    mods = measure()
    app()
    started = measure()
    while step():
        measure()
    print(report(mods, started))
