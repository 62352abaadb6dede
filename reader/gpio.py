# Relay, buzzer, buttons and the turn sensor on GPIO lines through libgpiod v2 (the `gpiod` bindings).
from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from gpiod import LineSettings
from gpiod.line import Bias, Direction, Edge, Value

CONSUMER = "hexiao-reader"
_LONG = 16  # polls (~50 ms each, outputs.buttons): a press held 0.8 s is a long press
_REPEAT = 8  # then up/down repeat their long step every 0.4 s while held
_TURN_QUIET_NS = 30_000_000  # turn-sensor edges closer than this to the previous one are bounce


def output(api: Any, chip: str, line: int, active_high: bool = True) -> Any:
    """One output line, requested inactive: the relay stays open from the first instant the reader
    holds it (the wiring's pull-down holds it before that, hardware/wiring.md)."""
    settings = LineSettings(
        direction=Direction.OUTPUT, output_value=Value.INACTIVE, active_low=not active_high
    )
    return api.request_lines(chip, consumer=CONSUMER, config={line: settings})


class Relay:
    """The relay as value(1) = closed whatever its polarity (the kernel applies active_low).

    close_for(ms) closes it and arms a timer thread that opens it at the deadline, as the ESP32's
    hardware timer does (hx/sound.py pulse): a stalled event loop cannot hold the gate open longer."""

    def __init__(self, req: Any, line: int) -> None:
        self.req = req
        self.line = line
        self.on = 0
        self.timer: threading.Timer | None = None
        self.lock = threading.Lock()

    def value(self, v: int | None = None) -> int:
        if v is not None:
            with self.lock:
                if not v and self.timer is not None:
                    self.timer.cancel()
                    self.timer = None
                self.on = 1 if v else 0
                self.req.set_value(self.line, Value.ACTIVE if self.on else Value.INACTIVE)
        return self.on

    def close_for(self, ms: int) -> None:
        self.value(1)
        t = threading.Timer(ms / 1000, self._deadline)
        t.daemon = True
        with self.lock:
            self.timer = t
        t.start()

    def _deadline(self) -> None:
        with self.lock:
            self.timer = None
            if self.on:
                self.on = 0
                self.req.set_value(self.line, Value.INACTIVE)

    def release(self) -> None:
        """Open the relay and hand the line back (at exit: never leave a gate open)."""
        try:
            self.value(0)
        finally:
            self.req.release()


class Buzzer:
    """An active buzzer on one line: hx.sound's PWM calls (freq, duty) become on/off. A Linux GPIO line
    has no hardware PWM through libgpiod, and a buzzer with its own oscillator needs none."""

    def __init__(self, req: Any, line: int) -> None:
        self.req = req
        self.line = line
        self.f = 0
        self.duty = 0

    def freq(self, f: int | None = None) -> int:
        if f is not None:
            self.f = f
        return self.f

    def duty_u16(self, d: int | None = None) -> int:
        if d is not None:
            self.duty = d
            self.req.set_value(self.line, Value.ACTIVE if d else Value.INACTIVE)
        return self.duty

    def release(self) -> None:
        try:
            self.duty_u16(0)
        finally:
            self.req.release()


class Buttons:
    """Buttons to ground with the SoC's pull-ups, polled by the app's buttons task (every ~50 ms), with
    the ESP32 board's rules (hx/boards/esp32.py): a level counts once read twice in a row; up/down are
    reported when pressed and, held, add "<name>_long" every 0.4 s; ok is reported on release, or as
    "ok_long" once held 0.8 s, so a long press never also counts as a short one."""

    def __init__(self, api: Any, chip: str, lines: dict[str, int]) -> None:
        self.names = list(lines)
        self.lines = [lines[n] for n in self.names]
        settings = LineSettings(direction=Direction.INPUT, bias=Bias.PULL_UP, active_low=True)
        self.req = api.request_lines(chip, consumer=CONSUMER, config={tuple(self.lines): settings})
        k = len(self.names)
        self.state = [0] * k
        self.count = [0] * k
        self.held = [0] * k

    def poll(self) -> list[str]:
        out: list[str] = []
        for i, name in enumerate(self.names):
            down = 1 if self.req.get_value(self.lines[i]) == Value.ACTIVE else 0
            if down == self.state[i]:
                self.count[i] = 0
                if down:
                    h = self.held[i] = self.held[i] + 1
                    ok = name == "ok"
                    if (ok and h == _LONG) or (not ok and h >= _LONG and (h - _LONG) % _REPEAT == 0):
                        out.append(name + "_long")
                continue
            self.count[i] += 1
            if self.count[i] >= 2:
                self.state[i], self.count[i] = down, 0
                if down:
                    self.held[i] = 0
                    if name != "ok":
                        out.append(name)
                elif name == "ok" and self.held[i] < _LONG:
                    out.append("ok")
        return out

    def release(self) -> None:
        self.req.release()


async def turns(api: Any, chip: str, line: int, on_turn: Callable[[], None]) -> None:
    """The turnstile's rotation sensor (to ground, pull-up): each falling edge is one turn, as the
    ESP32's interrupt counts them (hx/boards/esp32.py): an edge closer than 30 ms to the previous one
    is contact bounce. The kernel timestamps every edge when it happens, so a pulse of a few ms between
    two loop turns still counts. Not the kernel's own debounce: it reports a level only once it has
    held for the period, so a pulse shorter than 30 ms would be no turn at all."""
    settings = LineSettings(direction=Direction.INPUT, bias=Bias.PULL_UP, edge_detection=Edge.FALLING)
    req = api.request_lines(chip, consumer=CONSUMER, config={line: settings})
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()
    loop.add_reader(req.fd, ready.set)
    last: int | None = None  # timestamp_ns of the previous falling edge
    try:
        while True:
            await ready.wait()
            ready.clear()
            for ev in req.read_edge_events():
                t = int(ev.timestamp_ns)
                if last is None or t - last >= _TURN_QUIET_NS:
                    on_turn()
                last = t
    finally:
        loop.remove_reader(req.fd)
        req.release()
