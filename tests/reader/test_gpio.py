# Relay, buzzer, buttons and the turn sensor through gpiod's own LineSettings on the simulated chip
# (reader/sim.py): the relay starts and ends open, active-low wiring is inverted, buttons follow the
# ESP32 board's rules, a turn pulse of a few ms counts once.
from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import time
from datetime import timedelta
from pathlib import Path

from gpiod import EdgeEvent, LineSettings
from gpiod.line import Bias, Direction, Edge

from reader import gpio
from reader.sim import Gpio, fifo_path


def levels(folder: Path, line: int) -> list[int]:
    recs = [json.loads(x) for x in (folder / "gpio.log").read_text().splitlines()]
    return [r["level"] for r in recs if r["line"] == line]


def test_the_relay_is_open_from_its_request_to_its_release_whatever_its_polarity(tmp_path: Path) -> None:
    chip = Gpio(str(tmp_path))
    high = gpio.Relay(gpio.output(chip, "/dev/gpiochip0", 17), 17)
    low = gpio.Relay(gpio.output(chip, "/dev/gpiochip0", 22, active_high=False), 22)
    for r in (high, low):
        r.value(1)
        r.value(0)
        r.value(1)
        r.release()  # at exit while closed: opened first
    assert levels(tmp_path, 17) == [0, 1, 0, 1, 0]
    assert levels(tmp_path, 22) == [1, 0, 1, 0, 1], "active-low: open is the high level"


def test_a_pulse_ends_at_its_deadline_even_if_nobody_opens_the_relay(tmp_path: Path) -> None:
    r = gpio.Relay(gpio.output(Gpio(str(tmp_path)), "/dev/gpiochip0", 17), 17)
    r.close_for(50)  # the event loop stalls: its value(0) never comes
    t = r.timer
    assert t is not None
    t.join(10)
    assert levels(tmp_path, 17) == [0, 1, 0] and r.value() == 0
    r.close_for(5000)
    r.value(0)  # the relay task opens it first: the timer is disarmed
    assert r.timer is None and levels(tmp_path, 17) == [0, 1, 0, 1, 0]
    r.release()


def test_buttons_short_long_and_repeat(tmp_path: Path) -> None:
    b = gpio.Buttons(Gpio(str(tmp_path)), "/dev/gpiochip0", {"ok": 5, "up": 6})

    def hold(levels: dict[int, int], polls: int) -> list[str]:
        (tmp_path / "gpio-in.json").write_text(json.dumps({str(k): v for k, v in levels.items()}))
        out: list[str] = []
        for _ in range(polls):
            out += b.poll()
        return out

    assert hold({}, 3) == []
    assert hold({5: 0}, 3) == [] and hold({}, 3) == ["ok"], "ok counts on release"
    assert hold({5: 0}, 20) == ["ok_long"] and hold({}, 3) == [], "a long press is not also a short one"
    assert hold({6: 0}, 2) == ["up"]
    assert hold({6: 0}, 30) == ["up_long"] * 2 and hold({}, 3) == [], "held 1.5 s: at 0.8 s and 1.2 s"
    assert hold({6: 0}, 1) + hold({}, 3) == [], "one read of a bounce is no press"


def test_the_buzzer_is_on_only_while_a_tone_plays(tmp_path: Path) -> None:
    bz = gpio.Buzzer(gpio.output(Gpio(str(tmp_path)), "/dev/gpiochip0", 18), 18)
    bz.freq(2700)
    bz.duty_u16(32768)
    bz.duty_u16(0)
    bz.duty_u16(32768)
    bz.release()
    assert levels(tmp_path, 18) == [0, 1, 0, 1, 0]


def press(folder: Path, line: int, record: dict[str, object]) -> None:
    """Write one record to a simulated input line's FIFO (reader/sim.py)."""
    fd = os.open(fifo_path(str(folder), line), os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(fd, (json.dumps(record) + "\n").encode())
    finally:
        os.close(fd)


def test_a_button_press_written_to_its_line_is_read_by_the_poll(tmp_path: Path) -> None:
    b = gpio.Buttons(Gpio(str(tmp_path)), "/dev/gpiochip0", {"ok": 5})
    press(tmp_path, 5, {"level": 0, "reads": 3})  # held for three polls, then released
    assert [b.poll() for _ in range(6)] == [[], [], [], [], ["ok"], []]
    b.release()


def count_turns(folder: Path, waveform: list[list[int]], want: int) -> int:
    """Run gpio.turns on the simulated chip, feed it one waveform of line 26, return the turns counted
    once `want` were (or the wait gave up): all edges of one write are read in one go."""
    n = [0]

    async def run() -> None:
        task = asyncio.create_task(
            gpio.turns(Gpio(str(folder)), "/dev/gpiochip0", 26, lambda: n.__setitem__(0, n[0] + 1))
        )
        deadline = time.monotonic() + 10  # an upper bound for waiting, not a speed assertion
        while True:
            try:
                press(folder, 26, {"edges": waveform})
                break
            except OSError as e:  # the task has not requested the line (opened its FIFO) yet
                if e.errno not in (errno.ENXIO, errno.ENOENT) or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.01)
        while n[0] < want and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(run())
    return n[0]


def test_a_turn_pulse_of_a_few_ms_counts_once_and_its_bounce_not_at_all(tmp_path: Path) -> None:
    assert count_turns(tmp_path, [[0, 0], [4, 1]], 1) == 1, "a 4 ms pulse is a turn"
    bouncy = [[0, 0], [1, 1], [2, 0], [3, 1], [5, 0], [9, 1]]  # one turn, the contact chattering
    assert count_turns(tmp_path, [*bouncy, [60, 0], [64, 1]], 2) == 2, "two turns 60 ms apart"
    assert count_turns(tmp_path, bouncy, 1) == 1, "bounce within 30 ms is one turn"


def test_the_simulated_kernel_debounce_drops_pulses_shorter_than_its_period(tmp_path: Path) -> None:
    # Why turns() asks for no debounce period: gpiolib-cdev reports a level only once it has held
    # for the period, so a 4 ms pulse under a 30 ms debounce is no event at all.
    settings = LineSettings(
        direction=Direction.INPUT,
        bias=Bias.PULL_UP,
        edge_detection=Edge.FALLING,
        debounce_period=timedelta(milliseconds=30),
    )
    req = Gpio(str(tmp_path)).request_lines("/dev/gpiochip0", config={26: settings})
    press(tmp_path, 26, {"edges": [[0, 0], [4, 1]]})
    assert req.read_edge_events() == []
    press(tmp_path, 26, {"edges": [[0, 0], [2, 1], [3, 0], [50, 1]]})
    events = req.read_edge_events()
    assert [e.event_type for e in events] == [EdgeEvent.Type.FALLING_EDGE], events
    req.release()
