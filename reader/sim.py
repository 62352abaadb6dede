# Simulated hardware at the board seam (tests, demos): an I2C bus into a file, a GPIO chip in files.
# Everything above it is the real reader: Adafruit's SSD1306 driver writes to this bus, gpiod's own
# LineSettings configure this chip, the key events come as evdev's InputEvent (reader/hid.py fifo_events).
from __future__ import annotations

import json
import os
import struct
import threading
import time
from typing import Any

from gpiod.line import Value

_REC = struct.Struct("<BH")  # one I2C write in the log: address, length, then the bytes


class I2C:
    """A busio.I2C-shaped bus that appends every write to `path` (decoded by tools/sim/ssd1306_bus.py
    into the frames the panel would show) and answers at `addrs`."""

    def __init__(self, path: str, addrs: tuple[int, ...] = (0x3C,)) -> None:
        self.f = open(path, "ab", buffering=0)  # noqa: SIM115 - the bus lives as long as the reader
        self.addrs = addrs
        self._lock = threading.Lock()

    def try_lock(self) -> bool:
        return self._lock.acquire(blocking=False)

    def unlock(self) -> None:
        self._lock.release()

    def scan(self) -> list[int]:
        return list(self.addrs)

    def _present(self, address: int) -> None:
        if address not in self.addrs:
            raise OSError(121, "Remote I/O error")  # what Linux answers for a missing I2C device

    def writeto(self, address: int, buffer: Any, *, start: int = 0, end: int | None = None) -> None:
        self._present(address)
        data = bytes(buffer[start:end])
        self.f.write(_REC.pack(address, len(data)) + data)

    def readfrom_into(self, address: int, buffer: Any, *, start: int = 0, end: int | None = None) -> None:
        self._present(address)
        for i in range(start, len(buffer) if end is None else end):
            buffer[i] = 0


def read_i2c_log(path: str) -> list[tuple[int, bytes]]:
    """The (address, bytes) writes an I2C log holds, in order."""
    with open(path, "rb") as f:
        data = f.read()
    out, i = [], 0
    while i + _REC.size <= len(data):
        addr, n = _REC.unpack_from(data, i)
        i += _REC.size
        out.append((addr, data[i : i + n]))
        i += n
    return out


class _Request:
    """A gpiod LineRequest over files: levels of outputs appended to <dir>/gpio.log as JSON lines,
    inputs read from <dir>/gpio-in.json ({"<line>": 0 or 1}, the physical level; missing = high, as
    the pull-ups hold an idle button). Active-low lines are inverted as the kernel does."""

    def __init__(self, folder: str, config: dict[Any, Any]) -> None:
        self.folder = folder
        self.settings: dict[int, Any] = {}
        for key, s in config.items():
            for line in key if isinstance(key, tuple) else (key,):
                self.settings[int(line)] = s
        self.r, self.w = os.pipe()  # an fd that never becomes readable: no edges in the simulation
        self.fd = self.r
        for line, s in self.settings.items():
            if s.direction.name == "OUTPUT":
                self.set_value(line, s.output_value)

    def set_value(self, line: int, value: Any) -> None:
        level = (value == Value.ACTIVE) != self.settings[line].active_low
        rec = {"t": time.time_ns() // 1_000_000, "line": line, "level": int(level)}
        with open(os.path.join(self.folder, "gpio.log"), "a") as f:
            f.write(json.dumps(rec) + "\n")

    def get_value(self, line: int) -> Any:
        try:
            with open(os.path.join(self.folder, "gpio-in.json")) as f:
                level = bool(json.load(f).get(str(line), 1))
        except (OSError, ValueError):
            level = True
        return Value.ACTIVE if level != self.settings[line].active_low else Value.INACTIVE

    def read_edge_events(self) -> list[Any]:
        return []

    def release(self) -> None:
        for fd in (self.r, self.w):
            try:
                os.close(fd)
            except OSError:
                pass


class Gpio:
    """The `gpiod` module's request_lines, on files in `folder` (the chip path is only checked to be
    the one configured, as a real chip would be opened)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def request_lines(self, path: str, config: dict[Any, Any], consumer: str | None = None, **_: Any) -> Any:
        return _Request(self.folder, config)
