# Unit tests of hx.render: the pixels of each screen (text rows as documented in docs/firmware.md).
import framebuf
import hx.ui as U
from hx import render

import t


def _fb():
    buf = bytearray(1024)
    return framebuf.FrameBuffer(buf, 128, 64, framebuf.MONO_VLSB), buf


def _has_text(fb, text, x, y, inverted=False):
    ref, _ = _fb()
    ref.fill(1 if inverted else 0)
    ref.text(text, x, y, 0 if inverted else 1)
    for yy in range(y, y + 8):
        for xx in range(x, min(128, x + 8 * len(text))):
            if fb.pixel(xx, yy) != ref.pixel(xx, yy):
                return False
    return True


def test_ready_screen():
    ui = U.UI("handheld", 5000, 3000, 0)
    ui.link(True, 0, 0)
    fb, _ = _fb()
    render.draw(fb, ui, "Gate 1")
    t.true(_has_text(fb, "ON  q0", 0, render.Y_BAR), "status bar")
    t.true(_has_text(fb, "Gate 1", 128 - 48, render.Y_BAR), "gate name")
    t.true(_has_text(fb, "READY", 0, render.Y_L1), "l1")
    t.true(_has_text(fb, "scan a code", 0, render.Y_L2), "l2")


def test_ok_screen_is_inverted():
    ui = U.UI("turnstile", 5000, 3000, 0)
    ui.link(True, 1, 0)
    ui.scan_queued("1-1", "X", 1, 0)
    ui.verdict(
        {
            "sid": "1-1",
            "ok": True,
            "reason": "OK",
            "l1": "OK  VIP Day Pass",
            "l2": "4 of 5 left",
            "sound": "ok",
            "left": 4,
            "detail": "",
        },
        1,
    )
    fb, _ = _fb()
    render.draw(fb, ui)
    t.eq(fb.pixel(127, 63), 1, "lit background")
    t.true(_has_text(fb, "OK  VIP Day Pass", 0, render.Y_L1, True), "l1 inverted")
    t.true(_has_text(fb, "4 of 5 left", 0, render.Y_L2, True), "l2 inverted")
    t.true(_has_text(fb, "** OK **", 32, render.Y_TITLE, True), "title")


def test_denied_screen_shows_reason():
    ui = U.UI("handheld", 5000, 3000, 0)
    ui.link(True, 0, 0)
    ui.scan_queued("1-1", "X", 1, 0)
    ui.verdict(
        {
            "sid": "1-1",
            "ok": False,
            "reason": "ALREADY_USED",
            "l1": "ALREADY USED",
            "l2": "14:02 Gate 3",
            "sound": "deny",
            "left": 0,
            "detail": "",
        },
        1,
    )
    fb, _ = _fb()
    render.draw(fb, ui)
    t.eq(fb.pixel(64, 40), 0, "dark background")
    t.true(_has_text(fb, "DENIED", 40, render.Y_TITLE), "title")
    t.true(_has_text(fb, "ALREADY USED", 0, render.Y_L1), "l1")
    t.true(_has_text(fb, "14:02 Gate 3", 0, render.Y_L2), "l2")
    t.true(_has_text(fb, "ALREADY_USED", 0, render.Y_FOOT), "reason code")


def test_offline_screen():
    ui = U.UI("handheld", 5000, 3000, 0)
    ui.booted(0)
    ui.scan_queued("1-1", "X", 2, 0)
    ui.button("up", 1)
    fb, _ = _fb()
    render.draw(fb, ui)
    t.true(_has_text(fb, "OFF q2", 0, render.Y_BAR), "bar")
    t.true(_has_text(fb, "OFFLINE", 0, render.Y_L1), "l1")
    t.true(_has_text(fb, "queued: 2", 0, render.Y_L2), "l2")
