# Draws the UI state onto any 128x64 framebuf (the SSD1306 on ESP32, a PBM-writing buffer on unix).
from micropython import const

import hx.ui as U

# Text rows (8x8 built-in font, 16 chars per row): documented in docs/firmware.md for screen tests.
Y_BAR = const(0)
Y_TITLE = const(16)
Y_L1 = const(30)
Y_L2 = const(42)
Y_FOOT = const(54)

TITLES = {
    U.BOOTING: "HEXIAO",
    U.READY: "",
    U.CHECKING: "",
    U.OK: "** OK **",
    U.DENIED: "DENIED",
    U.OFFLINE: "",
    U.ERROR: "! ERROR !",
    U.OUTBOX_FULL: "! FULL !",
    U.MESSAGE: "MESSAGE",
    U.PICK: "REDEEM?",
    U.PIN: "SIGN IN",
}


def draw(fb, ui, gate=""):
    fb.fill(0)
    bar = ("ON " if ui.online else "OFF") + " q%d" % ui.queued
    if ui.mode == "handheld" and ui.qty > 1:
        bar += " x%d" % ui.qty
    fb.text(bar[:16], 0, Y_BAR, 1)
    if gate and len(bar) + 1 + len(gate) <= 16:
        fb.text(gate, 128 - 8 * len(gate), Y_BAR, 1)
    fb.hline(0, 10, 128, 1)
    ok = ui.state == U.OK
    if ok:
        # Inverted: an OK must be recognisable at a glance and from a distance.
        fb.fill_rect(0, 12, 128, 52, 1)
    elif ui.state in (U.DENIED, U.ERROR, U.OUTBOX_FULL):
        # Top and bottom rules only: full-width text rows stay clean for a reader of the frame.
        fb.hline(0, 12, 128, 1)
        fb.hline(0, 63, 128, 1)
    c = 0 if ok else 1
    title = TITLES.get(ui.state, "")
    if title:
        fb.text(title, (128 - 8 * len(title)) // 2, Y_TITLE, c)
    fb.text(ui.l1[:16], 0, Y_L1, c)
    fb.text(ui.l2[:16], 0, Y_L2, c)
    if ui.state in (U.DENIED, U.PICK, U.PIN) and ui.reason:
        fb.text(ui.reason[:16], 0, Y_FOOT, c)
    if ui.state == U.PIN:
        # The digit being chosen is drawn here only (l1/l2 are logged): a box when none is chosen yet.
        x = 8 * len(ui.l2)
        if ui.digit < 0:
            fb.rect(x, Y_L2, 8, 8, c)
        else:
            fb.text("0123456789"[ui.digit], x, Y_L2, c)
