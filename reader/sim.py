# Simulated hardware at the board seam (tests, demos): an I2C bus into a file, a GPIO chip in files and FIFOs.
# Everything above it is the real reader: Adafruit's SSD1306 driver writes to this bus, gpiod's own
# LineSettings configure this chip, the key events come as evdev's InputEvent (reader/hid.py fifo_events).
from __future__ import annotations

import json
import os
import select
import stat
import struct
import threading
import time
from datetime import timedelta
from typing import Any

from gpiod import EdgeEvent
from gpiod.line import Edge, Value

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


def fifo_path(folder: str, line: int) -> str:
    """The FIFO a test writes a line's input changes to (see _Request)."""
    return os.path.join(folder, f"gpio-{line}.fifo")


class _Input:
    """One input line of a request: its physical level, driven by the records written to its FIFO,
    and the kernel's edge detection on it (gpiolib-cdev: without a debounce period every transition
    the edge setting asks for is an event, stamped when it happened; with one, a level is reported
    only once it has held that long and differs from the last one reported, stamped then, so a pulse
    shorter than the period is no event at all)."""

    def __init__(self, folder: str, line: int, settings: Any) -> None:
        self.line = line
        self.s = settings
        path = fifo_path(folder, line)
        if not (os.path.exists(path) and stat.S_ISFIFO(os.stat(path).st_mode)):
            os.mkfifo(path)
        self.r = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.w = os.open(path, os.O_WRONLY | os.O_NONBLOCK)  # held: no end-of-file when a writer leaves
        self.buf = b""
        self.level: bool | None = None  # physical, None: as gpio-in.json / the pull-up says
        self.debounced = True  # the last level reported (the pull-up's idle high)
        self.reads: list[tuple[bool, int]] = []  # (level, reads left): a press held for n polls
        self.events: list[Any] = []  # read, not yet taken by read_edge_events
        self.seqno = 0
        period = settings.debounce_period or timedelta(0)
        self.debounce_ns = int(period.total_seconds() * 1e9)
        self.until = 0  # when the last waveform's last step happened (monotonic ns)

    def drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.r, 4096)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.buf += chunk
        *lines, self.buf = self.buf.split(b"\n")
        for raw in lines:
            if raw.strip():
                self.apply(json.loads(raw))

    def apply(self, rec: dict[str, Any]) -> None:
        """{"edges": [[ms, level], ...]}: the line goes to each level that many ms after the record
        was read (a waveform; it is taken to hold its last level). {"level": 0, "reads": n}: the line
        reads `level` for the next n reads, then what it read before (a button held for n polls)."""
        if "reads" in rec:
            self.reads.append((bool(rec["level"]), int(rec["reads"])))
            return
        # CLOCK_MONOTONIC, the kernel's default event clock; never before the previous waveform ended
        # (two records read at once are one after the other, as they were written).
        base = max(time.monotonic_ns(), self.until)
        level = True if self.level is None else self.level
        steps: list[tuple[int, bool]] = []  # the transitions: (when, the level it goes to)
        for ms, lv in rec["edges"]:
            if bool(lv) != level:
                level = bool(lv)
                steps.append((base + int(float(ms) * 1e6), level))
        for i, (t, lv) in enumerate(steps):
            if not self.debounce_ns:
                self.edge(lv, t)
                continue
            held = i + 1 == len(steps) or steps[i + 1][0] - t >= self.debounce_ns
            if held and lv != self.debounced:  # held for the period and new: the debouncer reports it
                self.debounced = lv
                self.edge(lv, t + self.debounce_ns)
        self.level = level
        if steps:
            self.until = steps[-1][0]

    def edge(self, level: bool, t: int) -> None:
        logical = level != self.s.active_low
        want = self.s.edge_detection
        if want == Edge.BOTH or (want == Edge.RISING and logical) or (want == Edge.FALLING and not logical):
            kind = EdgeEvent.Type.RISING_EDGE if logical else EdgeEvent.Type.FALLING_EDGE
            self.seqno += 1
            self.events.append(EdgeEvent(kind.value, t, self.line, self.seqno, self.seqno))

    def read(self, static: bool) -> bool:
        self.drain()
        if self.reads:
            level, left = self.reads[0]
            self.reads[0] = (level, left - 1)
            if left <= 1:
                self.reads.pop(0)
            return level
        return static if self.level is None else self.level

    def close(self) -> None:
        for fd in (self.r, self.w):
            try:
                os.close(fd)
            except OSError:
                pass


class _Request:
    """A gpiod LineRequest over files: levels of outputs appended to <dir>/gpio.log as JSON lines.
    Inputs read <dir>/gpio-in.json ({"<line>": 0 or 1}, the physical level; missing = high, as the
    pull-ups hold an idle button) unless a test changed them through the line's FIFO,
    <dir>/gpio-<line>.fifo (see _Input.apply). A line with edge detection makes `fd` readable when
    its FIFO has something; read_edge_events() turns that into gpiod's EdgeEvents. Active-low lines
    are inverted as the kernel does."""

    def __init__(self, folder: str, config: dict[Any, Any]) -> None:
        self.folder = folder
        self.settings: dict[int, Any] = {}
        for key, s in config.items():
            for line in key if isinstance(key, tuple) else (key,):
                self.settings[int(line)] = s
        self.inputs = {
            line: _Input(folder, line, s) for line, s in self.settings.items() if s.direction.name == "INPUT"
        }
        watched = [i for i in self.inputs.values() if i.s.edge_detection not in (None, Edge.NONE)]
        if len(watched) > 1:
            raise NotImplementedError("the simulated chip watches edges on one line per request")
        self.watched = watched[0] if watched else None
        self.r, self.w = os.pipe()  # without edge detection: an fd that never becomes readable
        self.fd = self.watched.r if self.watched else self.r
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
                static = bool(json.load(f).get(str(line), 1))
        except (OSError, ValueError):
            static = True
        level = self.inputs[line].read(static) if line in self.inputs else static
        return Value.ACTIVE if level != self.settings[line].active_low else Value.INACTIVE

    def wait_edge_events(self, timeout: Any = None) -> bool:
        if self.watched is None:
            return False
        if self.watched.events:
            return True
        secs = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        return bool(select.select([self.fd], [], [], secs)[0])

    def read_edge_events(self, max_events: int | None = None) -> list[Any]:
        if self.watched is None:
            return []
        self.watched.drain()
        n = len(self.watched.events) if max_events is None else max_events
        out, self.watched.events = self.watched.events[:n], self.watched.events[n:]
        return out

    def release(self) -> None:
        for i in self.inputs.values():
            i.close()
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
