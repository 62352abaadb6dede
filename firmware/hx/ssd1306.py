# Our small SSD1306 128x64 OLED driver over I2C: a MONO_VLSB framebuf plus the init sequence and a flush.
# Written here because micropython-lib's ssd1306 is not frozen into the stock ESP32 firmware.
import framebuf
from micropython import const

_SET_CONTRAST = const(0x81)
_DISPLAY_ALL_ON_RESUME = const(0xA4)
_NORM_INV = const(0xA6)
_DISP_OFF = const(0xAE)
_DISP_ON = const(0xAF)
_MEM_ADDR = const(0x20)
_COL_ADDR = const(0x21)
_PAGE_ADDR = const(0x22)
_START_LINE = const(0x40)
_SEG_REMAP = const(0xA1)
_MUX_RATIO = const(0xA8)
_COM_SCAN_DEC = const(0xC8)
_DISP_OFFSET = const(0xD3)
_COM_PINS = const(0xDA)
_CLK_DIV = const(0xD5)
_PRECHARGE = const(0xD9)
_VCOM_DESEL = const(0xDB)
_CHARGE_PUMP = const(0x8D)


class SSD1306_I2C(framebuf.FrameBuffer):
    """Draw with the framebuf API, then show() sends the whole 1 KB buffer (one I2C write)."""

    def __init__(self, width, height, i2c, addr=0x3C):
        self.width = width
        self.height = height
        self.pages = height // 8
        self.i2c = i2c
        self.addr = addr
        self.buffer = bytearray(self.pages * width)
        self._cmd = bytearray(2)
        super().__init__(self.buffer, width, height, framebuf.MONO_VLSB)
        self.init_display()

    def init_display(self):
        for c in (
            _DISP_OFF,
            _MEM_ADDR, 0x00,  # horizontal addressing: the buffer streams in page order
            _START_LINE | 0x00,
            _SEG_REMAP,  # column 127 mapped to SEG0
            _MUX_RATIO, self.height - 1,
            _COM_SCAN_DEC,
            _DISP_OFFSET, 0x00,
            _COM_PINS, 0x12 if self.height == 64 else 0x02,
            _CLK_DIV, 0x80,
            _PRECHARGE, 0xF1,  # internal charge pump timing
            _VCOM_DESEL, 0x30,
            _SET_CONTRAST, 0xFF,
            _DISPLAY_ALL_ON_RESUME,
            _NORM_INV,
            _CHARGE_PUMP, 0x14,  # modules without an external VCC need the internal pump
            _DISP_ON,
        ):
            self.write_cmd(c)
        self.fill(0)
        self.show()

    def write_cmd(self, c):
        self._cmd[0] = 0x80  # Co=1, D/C#=0: one command byte follows
        self._cmd[1] = c
        self.i2c.writeto(self.addr, self._cmd)

    def power(self, on):
        self.write_cmd(_DISP_ON if on else _DISP_OFF)

    def contrast(self, value):
        self.write_cmd(_SET_CONTRAST)
        self.write_cmd(value)

    def show(self):
        for c in (_COL_ADDR, 0, self.width - 1, _PAGE_ADDR, 0, self.pages - 1):
            self.write_cmd(c)
        # 0x40 = Co=0, D/C#=1: the rest is display data. writevto avoids copying the 1 KB buffer.
        self.i2c.writevto(self.addr, (b"\x40", self.buffer))
