# The reader's screen: Adafruit's SSD1306 driver on the simulated I2C bus, decoded back into frames that
# read as the firmware's (the 8x8 font of MicroPython's framebuf, 16 characters a row).
from __future__ import annotations

from pathlib import Path

from reader import compat, font
from reader.oled import Oled
from reader.sim import I2C, read_i2c_log
from tools.sim.oled import font_from_vm
from tools.sim.ssd1306_bus import frames


def test_the_font_is_the_vms() -> None:
    vm = font_from_vm()
    for c in range(font.FIRST, font.LAST + 1):
        rows = font.GLYPHS[(c - font.FIRST) * 8 : (c - font.FIRST) * 8 + 8]
        assert tuple(bytes((r >> (7 - x)) & 1 for x in range(8)) for r in rows) == vm.glyphs[chr(c)], chr(c)


def test_the_render_of_the_core_reaches_the_panel_through_i2c(tmp_path: Path) -> None:
    compat.install()
    import hx.ui as U
    from hx.render import draw

    log = tmp_path / "i2c.log"
    oled = Oled(I2C(str(log)))
    ui = U.UI("turnstile", 8000, 3000, 0)
    ui.link(True, 2, 0)
    draw(oled, ui, "Gate 7")
    n = oled.show()
    shown = frames(read_i2c_log(str(log)))
    assert n == 1 and len(shown) == 2 and shown[0].lit() == 0  # the driver's blank first frame, then ours
    assert shown[1].text_lines()[0] == "ON  q2    Gate 7"
    assert shown[1].contains_text(ui.l1) and shown[1].contains_text(ui.l2)


def test_no_panel_on_the_bus_is_an_error_the_board_turns_into_no_screen(tmp_path: Path) -> None:
    try:
        Oled(I2C(str(tmp_path / "i2c.log"), addrs=()))
    except (OSError, ValueError) as e:
        assert "121" in str(e) or "No I2C device" in str(e)
    else:
        raise AssertionError("a missing panel went unnoticed")
