# Adversarial firmware probes (run on the MicroPython VM): late verdicts, rejoined offline scans.
import json
import sys

_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
sys.path.insert(0, _here + "/../../firmware/mp")
import t  # noqa: E402  (puts the firmware on sys.path)

import hx.ui as U  # noqa: E402
from hx.app import App  # noqa: E402
from hx.config import validate  # noqa: E402
from test_app import Board  # noqa: E402  (the app tests' fake board, one definition)

IID = "Ab3xYz"


def _app(mode="turnstile", **kw):
    raw = {"device": "dev-1", "mode": mode, "outbox_max": 5}
    raw.update(kw)
    b = Board(t.tmpdir())
    return App(b, validate(raw), 7, IID), b


def S(seq, boot=7):
    return "%s-%x-%x" % (IID, boot, seq)


def _v(sid, ok=True, reason="OK"):
    return json.dumps(
        {
            "v": 1,
            "sid": sid,
            "ok": ok,
            "reason": reason,
            "l1": "L1",
            "l2": "L2",
            "sound": "ok" if ok else "error",
            "left": 0,
        }
    ).encode()


def test_ui_verdict_after_timeout_without_tick_pulses():
    """Hole 19: a verdict arriving after the CHECKING timeout must not act, even if tick() has not
    yet run (awaits() only looks at the state, never at the clock)."""
    ui = U.UI("turnstile", 5000, 3000, 0)
    ui.booted(0)
    ui.link(True, 0, 0)
    ui.scan_queued("s1", "C", 1, 0)
    fx = ui.verdict(
        {
            "sid": "s1",
            "ok": True,
            "reason": "OK",
            "l1": "",
            "l2": "",
            "sound": "ok",
            "left": None,
            "detail": "",
        },
        60000,
    )  # a minute late
    t.eq([e for e in fx if e[0] == "relay"], [], "late verdict pulsed the relay")


def test_offline_queued_scan_rejoined_by_rescan_pulses():
    """Hole 19/13: a scan queued OFFLINE (the holder told it is not an OK; staff may let them in by
    hand) is never rejoined by a later rescan of the same code, and its OK never opens the gate."""
    app, b = _app(dedupe_ms=1000)
    app.on_line(b"GATE-1", 0)  # offline: queued
    t.eq(app.ui.state, U.OFFLINE)
    app.ui.link(True, 0, 100)  # link back, scan not yet uploaded/answered
    app.on_line(b"GATE-1", 5000)  # someone rescans the same code
    t.eq(app.outbox.sids, [S(1), S(2)], "the offline scan is not rejoined: the rescan is a new scan")
    app.on_verdict(_v(S(1)), 5100)
    t.eq(app.relays.items, [], "the OK of a scan queued offline opened the gate")


def test_ok_button_cancel_then_rescan_is_second_redemption():
    """Hole 13: the verifier presses OK on CHECKING (gives up by hand); the late OK is kept for a
    rescan like after NO ANSWER, so the rescan collects it instead of a second redemption."""
    app, b = _app(mode="handheld", dedupe_ms=1000, pick=False)
    app.ui.link(True, 0, 0)
    app.on_line(b"GATE-1", 0)
    app.apply(app.ui.button("ok", 100))  # back to READY by hand
    app.on_verdict(_v(S(1)), 2000)  # late OK
    app.on_line(b"GATE-1", 5000)  # the holder rescans
    t.eq(app.outbox.sids, [S(1)], "the rescan collects the late OK under its own sid, no second redemption")


def main():
    counts = [0, 0]
    only = sys.argv[1:]
    for name in sorted(n for n in globals() if n.startswith("test_") and (not only or n in only)):
        try:
            globals()[name]()
            counts[0] += 1
            print("ok   " + name)
        except Exception as e:
            counts[1] += 1
            print("FAIL %s: %r" % (name, e))
    print("%d passed, %d failed" % tuple(counts))


main()
