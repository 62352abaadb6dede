# Handheld-only screens (pure, like hx/ui.py): the quantity / amount picker and the PIN sign-in.
# Imported by the UI on first use, so a turnstile never loads it. It imports nothing of the UI: each
# function takes the UI object and uses only its public screen methods (show_pick, show_pin, touch,
# back_to_idle) and entry fields (pick, pin, digit, code, qty); it returns effects like the UI does.
from micropython import const

_CENT = const(100)  # a voucher amount steps 1.00; a long press steps ten times as much
_BIG = const(10)
_AMT_MAX = const(10000000)  # the contract's largest `amt` (cents)
_STEPS = ("up", "down", "up_long", "down_long")


def money(cents):
    return "%d.%02d" % (cents // 100, cents % 100)


class Pick:
    """What the picker is choosing for the order on screen: `n` (units, or cents of a voucher) in lo..hi."""

    def __init__(self, title, value, lo, hi, n, left):
        self.title = title
        self.value = value  # True: an amount in cents (a voucher); False: a number of units
        self.lo = lo
        self.hi = hi
        self.n = n
        self.left = left  # units left / the voucher's balance, as the gateway said (None: unknown)

    def step(self, name):
        """up/down (long: x10) moves n, kept inside lo..hi."""
        step = _CENT if self.value else 1
        if name.endswith("_long"):
            step *= _BIG
        n = self.n + (step if name.startswith("up") else -step)
        self.n = max(self.lo, min(self.hi, n))

    def redeem(self, code):
        """The redeem effect's (code, qty, amt) for the choice made."""
        return (code, 1, self.n) if self.value else (code, self.n, None)


def open_pick(ui, v, qty_max, now):
    """A check answer with check=true: show the order and let the verifier choose (units up to qty_max)."""
    mx = v["max"]
    if v["kind"] == "value":
        mx = min(mx, _AMT_MAX)
        lo = min(_CENT, mx)
        ui.pick = Pick(v["title"], True, lo, mx, lo, v.get("bal", mx))
    else:
        hi = min(mx, qty_max)
        ui.pick = Pick(v["title"], False, 1, hi, min(ui.qty, hi), v["left"])
    _show_pick(ui, now)
    return [("sound", "attention")]


def _show_pick(ui, now):
    p = ui.pick
    if p.value:
        ui.show_pick(p.title, "pay " + money(p.n), "bal " + money(p.left if p.left else p.hi), now)
    else:
        ui.show_pick(p.title, "%d left  x%d" % (p.hi if p.left is None else p.left, p.n), "+/- hold:10 OK", now)


def pick_button(ui, name, now):
    p = ui.pick
    if p is None:
        return []
    if name == "ok":
        ui.pick = None
        ui.qty = 1
        return [("redeem", p.redeem(ui.code))]
    if name == "ok_long":
        ui.back_to_idle(now)
        return []
    if name not in _STEPS:
        return []
    p.step(name)
    _show_pick(ui, now)
    return []


def _show_pin(ui, now):
    foot = "OK empty=logout" if not ui.pin else "OK empty=send"
    ui.show_pin("PIN 4-8 digits", "*" * len(ui.pin), foot, now)


def pin_button(ui, name, now):
    if name == "ok_long":
        ui.back_to_idle(now)
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
    ui.touch(now)  # the digit is drawn by render, never put in l1/l2 (those are logged)
    return []


def open_pin(ui, now):
    """Long press ok at READY: type a 4-8 digit PIN (up/down choose a digit, ok takes it)."""
    ui.pin = ""
    ui.digit = -1
    _show_pin(ui, now)
    return []
