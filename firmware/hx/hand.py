# Handheld-only screens (pure, like hx/ui.py): the quantity / amount picker and the PIN sign-in.
# Imported on first use, so a turnstile never loads it. Functions take the UI and return effects.
from micropython import const

import hx.ui as U

_CENT = const(100)  # a voucher amount steps 1.00; a long press steps ten times as much
_BIG = const(10)
_AMT_MAX = const(10000000)  # the contract's largest `amt` (cents)
_STEPS = ("up", "down", "up_long", "down_long")


def money(cents):
    return "%d.%02d" % (cents // 100, cents % 100)


def open_pick(ui, v, now):
    """A check answer with check=true: show the order and let the verifier choose."""
    mx = v["max"]
    if v["kind"] == "value":
        mx = min(mx, _AMT_MAX)
        lo = min(_CENT, mx)
        ui.pick = [v["title"], True, lo, mx, lo, v.get("bal", mx)]
    else:
        hi = min(mx, U.QTY_MAX)
        ui.pick = [v["title"], False, 1, hi, min(ui.qty, hi), v["left"]]
    _show_pick(ui, ui.pick, now)
    return [("sound", "attention")]


def _show_pick(ui, p, now):
    title, value, lo, hi, n, left = p
    if value:
        ui._set(U.PICK, title, "pay " + money(n), now, ui.pick_ms, "bal " + money(left if left else hi))
    else:
        ui._set(U.PICK, title, "%d left  x%d" % (hi if left is None else left, n), now, ui.pick_ms,
                "+/- hold:10 OK")


def _pick_button(ui, name, now):
    p = ui.pick
    if p is None:
        return []
    if name == "ok":
        ui.pick = None
        ui.qty = 1
        return [("redeem", (ui.code, 1, p[4]) if p[1] else (ui.code, p[4], None))]
    if name == "ok_long":
        ui.pick = None
        ui._idle(now)
        return []
    if name not in _STEPS:
        return []
    step = _CENT if p[1] else 1
    if name.endswith("_long"):
        step *= _BIG
    n = p[4] + (step if name.startswith("up") else -step)
    p[4] = max(p[2], min(p[3], n))
    _show_pick(ui, p, now)
    return []


def _show_pin(ui, now):
    foot = "OK empty=logout" if not ui.pin else "OK empty=send"
    ui._set(U.PIN, "PIN 4-8 digits", "*" * len(ui.pin), now, ui.pick_ms, foot)


def _pin_button(ui, name, now):
    if name == "ok_long":
        ui.pin = ""
        ui._idle(now)
        return []
    if name == "ok":
        if ui.digit >= 0:
            ui.pin += "0123456789"[ui.digit]
            ui.digit = -1
            if len(ui.pin) < 8:
                _show_pin(ui, now)
                return []
        n = len(ui.pin)
        if 0 < n < 4:
            return [("sound", "error")]  # too short: stay and let them add digits
        pin = ui.pin
        ui.pin = ""
        return [("logout", None)] if n == 0 else [("login", pin)]
    if name not in _STEPS:
        return []
    d = ui.digit + (1 if name.startswith("up") else -1)
    ui.digit = -1 if d > 9 else 9 if d < -1 else d
    ui.version += 1  # the digit is drawn by render, never put in l1/l2 (those are logged)
    ui.since = now
    return []


def open_pin(ui, now):
    """Long press ok at READY: type a 4-8 digit PIN (up/down choose a digit, ok takes it)."""
    ui.pin = ""
    ui.digit = -1
    _show_pin(ui, now)
    return []


def button(ui, name, now):
    if ui.state == U.PICK:
        return _pick_button(ui, name, now)
    return _pin_button(ui, name, now)
