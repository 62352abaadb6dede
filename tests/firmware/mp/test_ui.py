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
    t.eq(list(ui.tick(3100)), [])
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


def test_hole19_late_ok_after_no_answer_never_opens():
    """Hole 19: after NO ANSWER the scan is no longer on screen: its OK, however late, drives no relay,
    no OK sound and no OK screen. A rescan that rejoins the scan (same sid) may be answered again."""
    ui = _ui("turnstile")
    ui.link(True, 0, 0)
    ui.scan_queued("1-1", "C", 1, 0)
    t.eq(ui.tick(5000), [("sound", "attention"), ("gave_up", "1-1")])
    t.eq((ui.state, ui.l1), (U.ERROR, "NO ANSWER"))
    t.eq(ui.verdict(_v("1-1", True, "OK", "ok"), 6000), [], "late: nothing happens")
    t.true(ui.state != U.OK, "no OK screen")
    t.eq(ui.l2, "please rescan")
    ui.tick(9000)
    t.eq(ui.verdict(_v("1-1", True, "OK", "ok"), 9500), [], "nor later on the idle screen")
    t.eq(ui.state, U.READY)
    ui.scan_queued("1-1", "C", 1, 10000)  # the rescan rejoined the queued scan
    t.eq(ui.verdict(_v("1-1", True, "OK", "ok"), 10100), [("sound", "ok"), ("relay", 1)], "on screen again")


def test_hole19_offline_queued_scan_is_never_awaited():
    """Hole 19: a scan queued offline shows OFFLINE; its verdict comes after the upload, when someone
    else may stand at the gate: it is never acted on."""
    ui = _ui("turnstile")
    t.eq(ui.scan_queued("1-1", "C", 3, 0), [("sound", "attention")])
    t.eq((ui.state, ui.l2), (U.OFFLINE, "queued: 3"))
    t.eq(ui.waiting, None)
    ui.link(True, 0, 4000)
    t.eq(ui.verdict(_v("1-1", True, "OK", "ok"), 4100), [])
    t.eq(ui.state, U.READY)


def test_hole19_dismissed_checking_is_not_awaited():
    """Hole 19: a CHECKING screen dismissed with the button is no longer waiting for its verdict."""
    ui = _ui("turnstile")
    ui.link(True, 0, 0)
    ui.scan_queued("1-1", "C", 1, 0)
    ui.button("ok", 100)
    t.eq(ui.verdict(_v("1-1", True, "OK", "ok"), 200), [])
    t.eq(ui.state, U.READY)


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


def _check(sid, mx, kind="pack", left=None, bal=None, title="VIP x10"):
    v = _v(sid, True, "OK", "ok", title, "%d left" % mx)
    v.update({"check": True, "max": mx, "kind": kind, "title": title})
    v["left"] = mx if left is None else left
    if bal is not None:
        v["bal"] = bal
    return v


def _picking(mx=10, kind="pack", **kw):
    ui = _ui()
    ui.link(True, 0, 0)
    t.eq(ui.sent("1-1", "check", "CHECKING...", "CODE-1", 0), [])
    t.eq((ui.state, ui.l2, ui.waiting), (U.CHECKING, "CODE-1", "1-1"))
    t.eq(ui.verdict(_check("1-1", mx, kind, **kw), 10), [("sound", "attention")])
    t.eq(ui.state, U.PICK)
    return ui


def test_single_unit_left_redeems_without_picker():
    ui = _ui()
    ui.link(True, 0, 0)
    ui.sent("1-1", "check", "CHECKING...", "CODE-1", 0)
    t.eq(ui.verdict(_check("1-1", 1, "ticket", left=1), 10), [("redeem", ("CODE-1", 1, None))])
    t.true(ui.state != U.PICK, "no choice to make, no picker")
    ui.sent("1-2", "check", "CHECKING...", "CODE-2", 20)
    t.eq(ui.verdict(_check("1-2", 1, "value", bal=1), 30), [("sound", "attention")])  # vouchers still ask
    t.eq(ui.state, U.PICK)


def test_pick_units_up_down_ok_redeems():
    ui = _picking(10, left=10)
    t.eq((ui.l1, ui.l2, ui.reason), ("VIP x10", "10 left  x1", "+/- hold:10 OK"))
    ui.button("down", 20)
    t.eq(ui.l2, "10 left  x1", "never below 1")
    ui.button("up", 30)
    ui.button("up", 40)
    t.eq(ui.l2, "10 left  x3")
    ui.button("up_long", 50)
    t.eq(ui.l2, "10 left  x10", "a long step stops at max")
    ui.button("down", 60)
    ui.button("down_long", 70)
    t.eq(ui.l2, "10 left  x1")
    ui.button("up", 80)
    ui.button("up", 80)
    t.eq(ui.button("ok", 90), [("redeem", ("CODE-1", 3, None))])
    t.eq(ui.pick, None)


def test_pick_is_capped_by_max_and_preselected_qty():
    ui = _ui()
    ui.link(True, 0, 0)
    ui.button("up", 1)
    ui.button("up", 2)
    t.eq(ui.qty, 3)
    ui.sent("1-1", "check", "CHECKING...", "C", 3)
    ui.verdict(_check("1-1", 2, left=5), 4)
    t.eq(ui.l2, "5 left  x2", "preselected 3, only 2 may be redeemed now (per-day room)")
    ui.button("up", 5)
    t.eq(ui.button("ok", 6), [("redeem", ("C", 2, None))])


def test_pick_value_amount_in_cents():
    ui = _picking(5050, "value", bal=5050, title="Voucher 50")
    t.eq((ui.l1, ui.l2, ui.reason), ("Voucher 50", "pay 1.00", "bal 50.50"))
    ui.button("up", 1)
    t.eq(ui.l2, "pay 2.00")
    ui.button("up_long", 2)
    t.eq(ui.l2, "pay 12.00")
    for i in range(5):
        ui.button("up_long", 3 + i)
    t.eq(ui.l2, "pay 50.50", "capped at the balance")
    ui.button("down_long", 10)
    t.eq(ui.l2, "pay 40.50")
    t.eq(ui.button("ok", 11), [("redeem", ("CODE-1", 1, 4050))])


def test_pick_small_balance_starts_at_balance():
    ui = _picking(40, "value", bal=40)
    t.eq(ui.l2, "pay 0.40")
    ui.button("down", 1)
    t.eq(ui.l2, "pay 0.40")


def test_pick_timeout_and_cancel_redeem_nothing():
    ui = _picking(10)
    ui.button("up", 1000)
    t.eq(list(ui.tick(20999)), [])
    t.eq(ui.state, U.PICK, "each press restarts the 20 s")
    t.eq(list(ui.tick(21000)), [])
    t.eq((ui.state, ui.pick), (U.READY, None))
    ui = _picking(10)
    t.eq(ui.button("ok_long", 20), [], "hold ok cancels")
    t.eq(ui.state, U.READY)
    ui.button("turned", 20)
    t.eq(ui.state, U.READY)


def test_check_denial_shown_at_once():
    ui = _ui()
    ui.link(True, 0, 0)
    ui.sent("1-1", "check", "CHECKING...", "C", 0)
    fx = ui.verdict(_v("1-1", False, "EXPIRED", "deny", "EXPIRED", "since 2026-01-01"), 5)
    t.eq(fx, [("sound", "deny")])
    t.eq((ui.state, ui.l1, ui.reason), (U.DENIED, "EXPIRED", "EXPIRED"))


def test_check_ok_without_choice_redeems_one():
    ui = _ui()
    ui.link(True, 0, 0)
    ui.sent("1-1", "check", "CHECKING...", "EXIT-1", 0)
    t.eq(ui.verdict(_v("1-1", True, "OK", "ok", "GOODBYE"), 5), [("redeem", ("EXIT-1", 1, None))])


def test_check_no_answer_means_rescan():
    ui = _ui()
    ui.link(True, 0, 0)
    ui.sent("1-1", "check", "CHECKING...", "C", 0)
    t.eq(ui.tick(5000), [("sound", "attention")])
    t.eq((ui.state, ui.l1, ui.l2, ui.waiting), (U.ERROR, "NO ANSWER", "rescan", None))
    t.eq(ui.verdict(_check("1-1", 3), 6000), [], "a late check answer opens no picker")
    t.eq(ui.state, U.ERROR)


def _pin_enter(ui, digits, now=100):
    for d in digits:
        for _ in range(int(d) + 1):  # empty -> 0 -> 1 ...
            ui.button("up", now)
        t.eq(ui.button("ok", now), [])


def test_pin_entry_login():
    ui = _ui()
    ui.link(True, 0, 0)
    t.eq(ui.button("ok_long", 10), [])
    t.eq((ui.state, ui.l1, ui.l2, ui.reason), (U.PIN, "PIN 4-8 digits", "", "OK empty=logout"))
    ui.button("down", 11)
    t.eq(ui.digit, 9, "down from empty wraps to 9")
    ui.button("up", 12)
    t.eq(ui.digit, -1, "9 -> empty")
    _pin_enter(ui, "4711")
    t.eq((ui.l2, ui.reason), ("****", "OK empty=send"))
    t.true("4711" not in ui.l1 + ui.l2 + ui.reason, "the PIN is never in the screen text")
    t.eq(ui.button("ok", 200), [("login", "4711")])
    t.eq(ui.pin, "", "forgotten once sent")


def test_pin_too_short_eight_digits_logout_cancel_timeout():
    ui = _ui()
    ui.link(True, 0, 0)
    ui.button("ok_long", 0)
    _pin_enter(ui, "12")
    t.eq(ui.button("ok", 10), [("sound", "error")], "2 digits are too few")
    t.eq((ui.state, ui.l2), (U.PIN, "**"))
    _pin_enter(ui, "345678"[:5])
    ui.button("up", 20)
    t.eq(ui.button("ok", 21), [("login", "12345670")], "the 8th digit sends at once")
    ui = _ui()
    ui.link(True, 0, 0)
    ui.button("ok_long", 0)
    t.eq(ui.button("ok", 1), [("logout", None)], "ok on an empty PIN signs out")
    ui.sent("1-9", "logout", "SIGNING OUT", "", 1)  # what the app does with it
    ui.button("ok", 2)
    t.eq(ui.state, U.READY)
    ui.button("ok_long", 2)
    ui.button("up", 3)
    t.eq(ui.button("ok_long", 4), [], "hold ok cancels")
    t.eq((ui.state, ui.pin), (U.READY, ""))
    ui.button("ok_long", 10)
    _pin_enter(ui, "99", 10)
    ui.tick(20009)
    t.eq(ui.state, U.PIN)
    ui.tick(20010)
    t.eq((ui.state, ui.pin), (U.READY, ""), "timeout forgets the digits")


def test_pin_needs_link_and_handheld():
    ui = _ui()
    t.eq(ui.button("ok_long", 0), [("sound", "error")])
    t.eq((ui.state, ui.l1), (U.ERROR, "NO LINK"))
    tu = _ui("turnstile")
    tu.link(True, 0, 0)
    tu.button("ok_long", 0)
    t.eq(tu.state, U.READY)


def test_login_answer_and_no_answer():
    ui = _ui()
    ui.link(True, 0, 0)
    ui.sent("1-5", "login", "SIGNING IN", "", 0)
    t.eq(ui.verdict(_v("1-5", True, "OK", "ok", "HELLO ANA", "signed in"), 1), [("sound", "ok")])
    t.eq((ui.state, ui.l1), (U.OK, "HELLO ANA"))
    ui.sent("1-6", "login", "SIGNING IN", "", 10)
    ui.verdict(_v("1-6", False, "BAD_PIN", "error", "BAD PIN", ""), 11)
    t.eq(ui.state, U.ERROR)
    ui.sent("1-7", "logout", "SIGNING OUT", "", 20)
    ui.tick(5020)
    t.eq((ui.state, ui.l2), (U.ERROR, "try again"))


def _turnstile(turn_ms=8000):
    ui = U.UI("turnstile", 5000, 3000, 0, 20000, turn_ms)
    ui.booted(0)
    ui.link(True, 0, 0)
    return ui


def test_turnstile_annul_when_not_turned():
    ui = _turnstile()
    ui.scan_queued("1-1", "C", 1, 0)
    t.eq(ui.verdict(_v("1-1", True, "OK", "ok"), 100), [("sound", "ok"), ("relay", 1)])
    t.eq(list(ui.tick(8099)), [])
    t.eq(ui.tick(8100), [("annul", "1-1")])
    t.eq(list(ui.tick(8200)), [], "annulled once")
    t.eq(ui.annul_queued("1-2", 1, 8100), [("sound", "attention")])
    t.eq((ui.state, ui.l1, ui.l2), (U.DENIED, "NOT PASSED", "annulling..."))
    fx = ui.verdict(_v("1-2", True, "OK", "ok", "ANNULLED", ""), 8200)
    t.eq(fx, [("sound", "attention")], "never the relay, never an OK screen for an annul")
    t.eq((ui.state, ui.l1, ui.l2), (U.DENIED, "NOT PASSED", "annulled"))


def test_turnstile_turn_seen_no_annul():
    ui = _turnstile()
    ui.scan_queued("1-1", "C", 1, 0)
    ui.verdict(_v("1-1", True, "OK", "ok"), 100)
    ui.turned(2000)
    t.eq(list(ui.tick(9000)), [])
    t.eq(list(ui.tick(60000)), [])


def test_turnstile_annul_refused_shown():
    ui = _turnstile()
    ui.annul_queued("1-2", 1, 0)
    t.eq(
        ui.verdict(_v("1-2", False, "ANNUL_REFUSED", "error", "CANNOT UNDO", "ask supervisor"), 5),
        [("sound", "error")],
    )
    t.eq((ui.state, ui.l1), (U.ERROR, "CANNOT UNDO"))


def test_no_sensor_never_annuls():
    ui = _turnstile(0)
    ui.scan_queued("1-1", "C", 1, 0)
    ui.verdict(_v("1-1", True, "OK", "ok"), 100)
    t.eq(ui.watch, None)
    t.eq(list(ui.tick(600000)), [])


def test_annul_does_not_steal_the_next_scan():
    ui = _turnstile(2000)
    ui.scan_queued("1-1", "A", 1, 0)
    ui.verdict(_v("1-1", True, "OK", "ok"), 100)
    ui.scan_queued("1-2", "B", 1, 1500)  # the next holder scans while the first has not turned
    t.eq(ui.tick(2100), [("annul", "1-1")])
    t.eq(ui.annul_queued("1-3", 2, 2100), [], "no NOT PASSED over the next scan")
    t.eq((ui.state, ui.waiting), (U.CHECKING, "1-2"))
    t.eq(ui.verdict(_v("1-2", True, "OK", "ok"), 2200), [("sound", "ok"), ("relay", 1)])


def test_pick_amount_capped_at_the_contract_limit():
    ui = _picking(20000000, "value", bal=20000000)
    for i in range(10005):
        ui.button("up_long", i)
    t.eq(ui.pick.n, 10000000, "amt never above 100,000.00 (the contract's limit)")
