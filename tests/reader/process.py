# The Linux reader as a real process on simulated hardware (reader/sim.py): type into its keyboard-wedge
# FIFO, drive its input lines (turn sensor, buttons) through theirs, read its events, its GPIO levels
# and the OLED frames decoded from its I2C writes.
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evdev import ecodes

from reader.hid import KEYS, pack_event
from reader.sim import fifo_path, read_i2c_log
from tests.helpers import wait_for
from tools.sim.oled import Frame
from tools.sim.ssd1306_bus import frames

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 30.0  # an upper bound for waiting, never a speed assertion
RELAY, BUZZER, OK_BUTTON, TURN = 17, 18, 5, 26
_BY_CHAR = {}
for _code, (_plain, _shifted) in KEYS.items():
    _BY_CHAR.setdefault(_plain, (_code, False))
    _BY_CHAR.setdefault(_shifted, (_code, _shifted != _plain))


def keystrokes(text: str) -> bytes:
    """The input_event records a US-layout keyboard-wedge scanner sends for `text` + Enter."""
    out = b""
    for ch in text:
        code, shift = _BY_CHAR[ch]
        if shift:
            out += pack_event(ecodes.EV_KEY, ecodes.KEY_LEFTSHIFT, 1)
        out += pack_event(ecodes.EV_KEY, code, 1) + pack_event(ecodes.EV_SYN, 0, 0)
        out += pack_event(ecodes.EV_KEY, code, 0)
        if shift:
            out += pack_event(ecodes.EV_KEY, ecodes.KEY_LEFTSHIFT, 0)
    return (
        out + pack_event(ecodes.EV_KEY, ecodes.KEY_ENTER, 1) + pack_event(ecodes.EV_KEY, ecodes.KEY_ENTER, 0)
    )


class ReaderProcess:
    def __init__(self, folder: Path, env: dict[str, str] | None = None) -> None:
        self.dir = folder
        self.device = folder.name  # for the e2e helpers' messages
        self.out = folder / "out"
        self.fifo = folder / "wedge.fifo"
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def simulate(self, **extra: Any) -> None:
        """board.json for simulated hardware: a wedge scanner, the OLED, relay, buzzer, an ok button."""
        if not self.fifo.exists():
            os.mkfifo(self.fifo)
        board = {
            "sim": True,
            "scanners": [{"type": "hid", "device": str(self.fifo)}],
            "relay": {"line": RELAY},
            "buzzer": {"line": BUZZER},
            "buttons": {"ok": OK_BUTTON},
            **extra,
        }
        (self.dir / "board.json").write_text(json.dumps(board))

    def start(self) -> ReaderProcess:
        (self.out / "i2c.log").unlink(missing_ok=True)  # a new process is a power cycle: frames from 0
        log = open(self.dir / "reader.log", "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reader", "--dir", str(self.dir)],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=log,
        )
        log.close()
        return self

    def stop(self) -> int:
        """SIGTERM, as systemd stops it; the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)

    def type(self, text: str) -> None:
        fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, keystrokes(text))
        finally:
            os.close(fd)

    def line(self, line: int, record: dict[str, Any]) -> None:
        """Write one record to a simulated input line's FIFO (reader/sim.py: a waveform of edges, or a
        level held for some polls), once the reader has requested the line."""

        def opened() -> int | None:
            try:
                return os.open(fifo_path(str(self.out), line), os.O_WRONLY | os.O_NONBLOCK)
            except OSError as e:  # not requested yet: no FIFO, or nobody has it open for reading
                if e.errno in (errno.ENOENT, errno.ENXIO):
                    return None
                raise

        fd: int = wait_for(opened, TIMEOUT, f"the reader to request GPIO line {line}")  # type: ignore[assignment]
        try:
            os.write(fd, (json.dumps(record) + "\n").encode())
        finally:
            os.close(fd)

    def turn(self, ms: float = 80) -> None:
        """The turnstile turns: its sensor pulls the turn line low for `ms`."""
        self.line(TURN, {"edges": [[0, 0], [ms, 1]]})

    def press(self, line: int = OK_BUTTON, polls: int = 4) -> None:
        """A button held down for `polls` of the buttons task, then let go."""
        self.line(line, {"level": 0, "reads": polls})

    def events(self) -> list[dict[str, Any]]:
        try:
            lines = (self.out / "events.log").read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(x) for x in lines if x.strip()]

    def mark(self) -> int:
        return len(self.events())

    def wait_event(self, pred: Callable[[dict[str, Any]], bool], after: int = 0, what: str = "event") -> Any:
        def found() -> Any:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"reader exited {self.proc.returncode}: {self.log()[-2000:]}")
            return next((e for e in self.events()[after:] if pred(e)), None)

        return wait_for(found, TIMEOUT, what)

    def levels(self, line: int) -> list[int]:
        """Every level the reader drove `line` to, in order (its GPIO log)."""
        try:
            recs = [json.loads(x) for x in (self.out / "gpio.log").read_text().splitlines() if x.strip()]
        except FileNotFoundError:
            return []
        return [r["level"] for r in recs if r["line"] == line]

    def pulses(self) -> int:
        """Relay closures: rising edges of the relay line."""
        lv = self.levels(RELAY)
        return sum(1 for a, b in zip([0, *lv], lv, strict=False) if not a and b)

    def frame(self, n: int) -> Frame:
        """Frame `n` (a `screen` event's number) as the panel showed it, from the I2C writes."""
        return frames(read_i2c_log(str(self.out / "i2c.log")))[n]

    def frames(self) -> int:
        """How many frames the panel has shown since this process started."""
        path = self.out / "i2c.log"
        return len(frames(read_i2c_log(str(path)))) if path.exists() else 0

    def log(self) -> str:
        return (self.dir / "reader.log").read_text(errors="replace")
