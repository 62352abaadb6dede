# Unit tests of hx.ui: the screen state machine and its effects, driven only by `now`.
import hx.ui as U
import t


def _v(sid, ok, reason, sound, l1="L1", l2="L2"):
    return {
        "sid": sid,
        "ok": ok,
        "reason": reason,
        "l1": l1,
        "l2": l2,
        "sound": sound,
        "left": None,
        "detail": "",
    }


def _ui(mode="handheld"):
    ui = U.UI(mode, 5000, 3000, 0)
    t.eq(ui.state, U.BOOTING)
    ui.booted(0)
    return ui


def test_boot_offline_then_ready():
    ui = _ui()
    t.eq(ui.state, U.OFFLINE)
    ui.link(True, 0, 10)
    t.eq(ui.state, U.READY)
    ui.link(False, 2, 20)
    t.eq((ui.state, ui.l2), (U.OFFLINE, "queued: 2"))


def test_scan_ok_then_back_to_ready():
    ui = _ui("turnstile")
    ui.link(True, 0, 0)
    t.eq(ui.scan_queued("1-1", "CODE", 1, 100), [])
    t.eq((ui.state, ui.l2), (U.CHECKING, "CODE"))
    fx = ui.verdict(_v("1-1", True, "OK", "ok", "OK  VIP"), 200)
    t.eq(fx, [("sound", "ok"), ("relay", 1)])
    t.eq((ui.state, ui.l1), (U.OK, "OK  VIP"))
    t.eq(ui.tick(3100), [])
    t.eq(ui.state, U.OK)
    ui.tick(3200)
    t.eq(ui.state, U.READY)


def test_handheld_never_pulses_relay():
    ui = _ui()
    ui.link(True, 0, 0)
    ui.scan_queued("1-1", "C", 1, 0)
    t.eq(ui.verdict(_v("1-1", True, "OK", "ok"), 1), [("sound", "ok")])


def test_denied_and_error_verdicts():
    ui = _ui("turnstile")
    ui.link(True, 0, 0)
    ui.scan_queued("1-1", "C", 1, 0)
    t.eq(
        ui.verdict(_v("1-1", False, "ALREADY_USED", "deny", "ALREADY USED", "14:02 Gate 3"), 1),
        [("sound", "deny")],
    )
    t.eq((ui.state, ui.reason, ui.l2), (U.DENIED, "ALREADY_USED", "14:02 Gate 3"))
    ui.scan_queued("1-2", "C", 1, 10)
    ui.verdict(_v("1-2", False, "MALFORMED", "error"), 11)
    t.eq(ui.state, U.ERROR)


def test_only_the_awaited_sid_is_shown():
    ui = _ui("turnstile")
    ui.link(True, 0, 0)
    ui.scan_queued("1-2", "C", 1, 0)
    t.eq(ui.verdict(_v("1-1", True, "OK", "ok"), 1), [], "an older scan's verdict")
    t.eq(ui.state, U.CHECKING)
    ui.verdict(_v("1-2", False, "EXPIRED", "deny"), 2)
    t.eq(ui.verdict(_v("1-2", True, "OK", "ok"), 3), [], "a second verdict for the same sid")
    t.eq(ui.state, U.DENIED)


def test_no_answer_then_late_verdict():
    ui = _ui()
    ui.link(True, 0, 0)
    ui.scan_queued("1-1", "C", 1, 0)
    t.eq(ui.tick(5000), [("sound", "attention")])
    t.eq((ui.state, ui.l1), (U.ERROR, "NO ANSWER"))
    ui.verdict(_v("1-1", True, "OK", "ok"), 6000)
    t.eq(ui.state, U.OK, "the holder may still be there")


def test_offline_scan_is_not_ok():
    ui = _ui()
    t.eq(ui.scan_queued("1-1", "C", 3, 0), [("sound", "attention")])
    t.eq((ui.state, ui.l2), (U.OFFLINE, "queued: 3"))


def test_full_bad_show():
    ui = _ui()
    t.eq(ui.outbox_full(0), [("sound", "error")])
    t.eq(ui.state, U.OUTBOX_FULL)
    t.eq(ui.bad_code(1), [("sound", "error")])
    t.eq(ui.state, U.ERROR)
    ui.show("Hello", "World", 2, 10)
    t.eq((ui.state, ui.l1, ui.l2), (U.MESSAGE, "Hello", "World"))
    ui.tick(2009)
    t.eq(ui.state, U.MESSAGE)
    ui.tick(2010)
    t.eq(ui.state, U.OFFLINE)


def test_buttons():
    ui = _ui()
    ui.link(True, 0, 0)
    ui.button("up", 1)
    ui.button("up", 2)
    t.eq(ui.qty, 3)
    ui.button("down", 3)
    ui.button("down", 3)
    ui.button("down", 3)
    t.eq(ui.qty, 1, "never below 1")
    ui.bad_code(5)
    ui.button("ok", 6)
    t.eq(ui.state, U.READY, "ok dismisses a result")
    tu = _ui("turnstile")
    tu.button("up", 1)
    t.eq(tu.qty, 1, "turnstiles always take 1")


def test_version_bumps_on_change():
    ui = _ui()
    v = ui.version
    ui.tick(10)
    t.eq(ui.version, v, "nothing changed")
    ui.link(True, 0, 11)
    t.true(ui.version > v, "changed")
