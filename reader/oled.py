# The SSD1306 128x64 OLED through Adafruit's driver (adafruit-circuitpython-ssd1306 on Blinka's I2C).
from __future__ import annotations

from typing import Any

import adafruit_ssd1306

from reader import font

WIDTH, HEIGHT = 128, 64


class Oled(adafruit_ssd1306.SSD1306_I2C):  # type: ignore[misc]
    """Adafruit's SSD1306 driver (init sequence, framebuffer, flush over I2C) with two changes the
    firmware's screens need: text in the firmware's 8x8 font (hx/render.py lays out 16 characters of
    8 px a row), and show() returning the frame's number for the `screen` event, as the ESP32's does."""

    def __init__(self, i2c: Any, addr: int = 0x3C) -> None:
        self.frame = -1  # the driver's own first show() (a blank screen) is frame 0
        super().__init__(WIDTH, HEIGHT, i2c, addr=addr)

    def text(self, string: str, x: int, y: int, color: int, **_: Any) -> None:
        for i, ch in enumerate(string):
            c = ord(ch)
            at = (c - font.FIRST if font.FIRST <= c <= font.LAST else ord("?") - font.FIRST) * 8
            left = x + 8 * i
            for row in range(8):
                bits = font.GLYPHS[at + row]
                for col in range(8):
                    if bits & (0x80 >> col):
                        self.pixel(left + col, y + row, color)

    def show(self) -> int:
        super().show()
        self.frame += 1
        return self.frame


class NullDisplay:
    """Stands in when no OLED answers on I2C (as on the ESP32): the reader still scans, beeps and logs."""

    frame = 0

    def __getattr__(self, name: str) -> Any:
        return lambda *a, **k: None

    def show(self) -> int:
        self.frame += 1
        return self.frame


def open_i2c() -> Any:
    """Blinka's I2C on the board's default pins (a Raspberry Pi: bus 1, header pins 3 SDA and 5 SCL)."""
    import board
    import busio

    return busio.I2C(board.SCL, board.SDA, frequency=400000)
