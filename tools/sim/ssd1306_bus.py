"""An SSD1306's side of an I2C log (reader/sim.py): the frames the panel shows, decoded from the
commands and display data its driver sent (control byte 0x80/0x00: commands, 0x40: data; horizontal
addressing within the column and page window set by 0x21/0x22), as ``tools.sim.oled.Frame``s."""

from __future__ import annotations

from tools.sim.oled import Frame

WIDTH, HEIGHT = 128, 64
_ARGS = {
    0x20: 1,
    0x21: 2,
    0x22: 2,
    0x81: 1,
    0x8D: 1,
    0xA8: 1,
    0xD3: 1,
    0xD5: 1,
    0xD9: 1,
    0xDA: 1,
    0xDB: 1,
    0xAD: 1,
}


class Panel:
    """GDDRAM and the address pointer of one 128x64 SSD1306."""

    def __init__(self) -> None:
        self.ram = bytearray(WIDTH * HEIGHT // 8)
        self.cols = (0, WIDTH - 1)
        self.pages = (0, HEIGHT // 8 - 1)
        self.col, self.page = 0, 0
        self.pending: list[int] = []  # a command still waiting for its argument bytes

    def command(self, b: int) -> None:
        self.pending.append(b)
        op = self.pending[0]
        if len(self.pending) <= _ARGS.get(op, 0):
            return
        args, self.pending = self.pending[1:], []
        if op == 0x21:
            self.cols = (args[0], args[1])
            self.col = args[0]
        elif op == 0x22:
            self.pages = (args[0], args[1])
            self.page = args[0]

    def data(self, chunk: bytes) -> None:
        for b in chunk:
            self.ram[self.page * WIDTH + self.col] = b
            self.col += 1
            if self.col > self.cols[1]:
                self.col = self.cols[0]
                self.page = self.page + 1 if self.page < self.pages[1] else self.pages[0]

    def frame(self) -> Frame:
        rows = tuple(
            bytes((self.ram[(y >> 3) * WIDTH + x] >> (y & 7)) & 1 for x in range(WIDTH))
            for y in range(HEIGHT)
        )
        return Frame(WIDTH, HEIGHT, rows)


def frames(writes: list[tuple[int, bytes]], addr: int = 0x3C) -> list[Frame]:
    """One frame per display-data write to `addr` (a driver's show() sends the whole buffer at once)."""
    panel = Panel()
    out: list[Frame] = []
    for a, data in writes:
        if a != addr or not data:
            continue
        control, body = data[0], data[1:]
        if control & 0x40:
            panel.data(body)
            out.append(panel.frame())
        else:
            for b in body:
                panel.command(b)
    return out
