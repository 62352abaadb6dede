# Relay, buzzer and buttons through gpiod's own LineSettings on the simulated chip (reader/sim.py): the
# relay starts and ends open, active-low wiring is inverted, buttons follow the ESP32 board's rules.
from __future__ import annotations

import json
from pathlib import Path

from reader import gpio
from reader.sim import Gpio


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
