# The Linux board layer: what hx.app.App asks of a board (hx/boards/*), on a Raspberry Pi-class machine.
from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from reader import gpio, hid, systemd

DEFAULTS: dict[str, Any] = {
    "board": "linux",
    "scanners": [],  # {"type": "hid", "device": "/dev/input/by-id/…-event-kbd"} | {"type": "serial", "port", "baud"}
    "oled": {"addr": 60},  # null: no screen
    "gpio": "/dev/gpiochip0",
    "relay": None,  # {"line": 17, "active_high": true}
    "buzzer": None,  # {"line": 18}
    "buttons": {},  # {"ok": 5, "up": 6, "down": 13}
    "turn": None,  # {"line": 26}
    "sim": False,  # simulated hardware (reader/sim.py): tests and demos
    "events": None,  # a file for the event log (JSON lines); default: stdout, i.e. the journal
}


class BoardError(Exception):
    pass


def load_profile(path: str) -> dict[str, Any]:
    try:
        with open(path) as f:
            raw = json.load(f)
    except OSError:
        return dict(DEFAULTS)
    except ValueError as e:
        raise BoardError(f"board.json: not valid JSON ({e})") from e
    if not isinstance(raw, dict):
        raise BoardError("board.json: must be a JSON object")
    unknown = set(raw) - set(DEFAULTS)
    if unknown:
        raise BoardError(f"board.json: unknown keys {', '.join(sorted(unknown))}")
    return {**DEFAULTS, **raw}


class Board:
    """The reader's state folder is its "flash" (config.json, ca.der, board.json, the outbox, install id,
    boot counter). Hardware comes from board.json; with "sim" it is reader/sim.py's files in <dir>/out."""

    outbox_cap = 1000
    fault: str | None = None

    def __init__(self, folder: str) -> None:
        self.flash = folder
        self.fault_ms = 5000
        self.clock_offset = 0
        self.p = load_profile(os.path.join(folder, "board.json"))
        self.name = str(self.p["board"])
        self.out = os.path.join(folder, "out")
        events = self.p["events"] or (os.path.join(self.out, "events.log") if self.p["sim"] else None)
        if self.p["sim"]:
            os.makedirs(self.out, exist_ok=True)
            from reader import sim

            self.gpio: Any = sim.Gpio(self.out)
        else:
            import gpiod

            self.gpio = gpiod
        self._log = open(events, "a") if events else sys.stdout  # noqa: SIM115 - open for the process
        self._display: Any = None
        self._relay: gpio.Relay | None = None
        self._buzzer: gpio.Buzzer | None = None
        self._buttons: gpio.Buttons | None = None
        self._serial: Any = None
        self.health: Callable[[], str | None] | None = None

    # -- what the core asks -----------------------------------------------------------------------
    def event(self, ev: str, data: dict[str, Any] | None = None) -> None:
        rec: dict[str, Any] = {"t": time.time_ns() // 1_000_000, "ev": ev}
        if data:
            rec.update(data)
        self._log.write(json.dumps(rec) + "\n")
        self._log.flush()

    def start(self, cfg: dict[str, Any], health: Any = None, on_turn: Any = None) -> list[tuple[str, Any]]:
        self.health = health
        tasks: list[tuple[str, Any]] = []
        if self.p["turn"] and on_turn:
            line = int(self.p["turn"]["line"])
            tasks.append(("turn", lambda: gpio.turns(self.gpio, self.p["gpio"], line, on_turn)))
        systemd.notify("READY=1")
        return tasks

    async def watchdog_task(self) -> None:
        """systemd's watchdog (WatchdogSec=) is fed only while the app's health checks pass, as the
        ESP32's hardware watchdog is (hx/health.py): a stalled loop or link, a stuck outbox restarts."""
        period = systemd.watchdog_s()
        if period is None:
            return
        said = None
        while True:
            why = self.health() if self.health else None
            if why is None:
                systemd.notify("WATCHDOG=1")
            elif why != said:
                self.event("unhealthy", {"why": why})
            said = why
            await asyncio.sleep(min(period / 3, 1.0))

    def maintenance(self) -> None:
        return

    def scanner(self) -> tuple[Any, Any, Any] | None:
        """(reader, writer, set_baud) of the serial GM65/GM861 scanner, or None when there is none."""
        for s in self.p["scanners"]:
            if s.get("type") == "serial":
                from reader.serialport import SerialStream

                if self._serial is not None:
                    self._serial.close()  # opened again after an error: the old handle goes
                stream = SerialStream(s["port"], int(s.get("baud", 9600)))
                self._serial = stream
                return stream.streams()
        return None

    def wedges(self) -> list[Callable[[], AsyncIterator[bytes | None]]]:
        """Keyboard-wedge scanners: for each, a function giving its code lines (None = a bad line)."""
        out: list[Callable[[], AsyncIterator[bytes | None]]] = []
        for s in self.p["scanners"]:
            if s.get("type") == "hid":
                out.append(functools.partial(self._wedge_lines, str(s["device"])))
        return out

    def _wedge_lines(self, path: str) -> AsyncIterator[bytes | None]:
        return hid.lines(hid.fifo_events(path) if self.p["sim"] else hid.device_events(path))

    def display(self) -> Any:
        if self._display is None:
            self._display = self._open_display()
        return self._display

    def _open_display(self) -> Any:
        from reader.oled import NullDisplay, Oled

        o = self.p["oled"]
        if not o:
            return NullDisplay()
        try:
            if self.p["sim"]:
                from reader.sim import I2C

                bus: Any = I2C(os.path.join(self.out, "i2c.log"))
            else:
                from reader.oled import open_i2c

                bus = open_i2c()
            return Oled(bus, int(o.get("addr", 60)))
        except (OSError, ValueError, RuntimeError) as e:  # no panel answers: scan on without a screen
            self.event("oled", {"error": repr(e)})
            return NullDisplay()

    def buzzer(self) -> Any:
        b = self.p["buzzer"]
        if self._buzzer is None and b:
            line = int(b["line"])
            self._buzzer = gpio.Buzzer(gpio.output(self.gpio, self.p["gpio"], line), line)
        return self._buzzer or gpio.Buzzer(_NoLine(), 0)

    def relay(self) -> Any:
        r = self.p["relay"]
        if self._relay is None and r:
            line = int(r["line"])
            self._relay = gpio.Relay(
                gpio.output(self.gpio, self.p["gpio"], line, r.get("active_high", True)), line
            )
        return self._relay

    def open_relay(self) -> None:
        """At start: the relay line requested (inactive) before anything else runs."""
        self.relay()

    def buttons(self) -> list[str]:
        if self._buttons is None:
            if not self.p["buttons"]:
                return []
            self._buttons = gpio.Buttons(
                self.gpio, self.p["gpio"], {k: int(v) for k, v in self.p["buttons"].items()}
            )
        return self._buttons.poll()

    def net_up(self) -> bool:
        return True

    def net_info(self) -> tuple[str, int]:
        return "", 0

    def random(self, n: int) -> bytes:
        return os.urandom(n)

    def unix_time(self) -> int:
        return int(time.time()) + self.clock_offset

    def set_time(self, t: int) -> None:
        # The system clock is the OS's (NTP): keep the gateway's difference, as the unix board does.
        self.clock_offset = t - int(time.time())

    def reboot(self) -> None:
        """A wedged app asks for a reset: exit non-zero, systemd (Restart=always) starts it clean."""
        self.event("reboot")
        raise SystemExit(75)

    def close(self) -> None:
        """At exit, whatever the cause: the relay open and every line handed back."""
        for part in (self._relay, self._buzzer, self._buttons):
            if part is not None:
                try:
                    part.release()
                except OSError:
                    pass
        if self._serial is not None:
            self._serial.close()
        if self._relay is not None:
            self.event("relay_pin", {"on": 0, "released": True})
        systemd.notify("STOPPING=1")


class _NoLine:
    def set_value(self, line: int, value: Any) -> None:
        return

    def release(self) -> None:
        return
