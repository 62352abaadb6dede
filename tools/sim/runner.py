"""Runs one real firmware instance (the unix board) on the MicroPython VM, as a board on the bench.

Owns the device's flash dir (config.json, outbox, boot counter), its virtual scanner on a pty and its
HX_OUT dir (events.log, OLED frames, the buttons file). ``kill()`` is a power cut, ``start()`` on the
same flash is a reboot.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from tools.sim.common import CA_FILE, DeviceConfig, Event, EventLog, MqttTarget, SimError, wait_until
from tools.sim.oled import Frame, PbmError, read_pbm
from tools.sim.paths import FIRMWARE_MAIN, MICROPYTHON
from tools.sim.png import render_png
from tools.sim.pty_scanner import PtyScanner

__all__ = [
    "DEFAULT_HEAP_K",
    "REBOOT_EXIT",
    "DeviceConfig",
    "Event",
    "EventLog",
    "FirmwareProcess",
    "MqttTarget",
    "SimError",
    "wait_until",
]


DEFAULT_HEAP_K = 256
REBOOT_EXIT = 75  # the unix board exits with this when the firmware asks for a reset (cmd "reboot")


class FirmwareProcess:
    """One simulated device: flash dir + pty scanner + out dir + the MicroPython process."""

    def __init__(
        self,
        workdir: Path,
        config: DeviceConfig,
        *,
        heap_k: int = DEFAULT_HEAP_K,
        micropython: Path = MICROPYTHON,
        main: Path = FIRMWARE_MAIN,
        scanner: PtyScanner | None = None,
        env: dict[str, str] | None = None,
        overwrite_config: bool = True,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.config = config
        self.heap_k = heap_k
        self.micropython = micropython
        self.main = main
        self.flash = self.workdir / "flash"
        self.out = self.workdir / "out"
        self.flash.mkdir(parents=True, exist_ok=True)
        self.out.mkdir(parents=True, exist_ok=True)
        cfg = self.flash / "config.json"
        if overwrite_config or not cfg.exists():
            cfg.write_text(json.dumps(config.to_json(), indent=2) + "\n")
            if config.mqtt.ca_der:
                (self.flash / CA_FILE).write_bytes(config.mqtt.ca_der)
        self.scanner = scanner or PtyScanner()
        self.extra_env = dict(env or {})
        self.log = EventLog(self.out / "events.log")
        self.proc: subprocess.Popen[bytes] | None = None
        self.boots = 0

    @property
    def device(self) -> str:
        return self.config.device

    @property
    def console_path(self) -> Path:
        return self.workdir / "console.log"

    # -- power ------------------------------------------------------------------------------------
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "HX_BOARD": "unix",
                "HX_FLASH": str(self.flash),
                "HX_UART": self.scanner.port,
                "HX_OUT": str(self.out),
            }
        )
        env.update(self.extra_env)
        return env

    def command(self) -> list[str]:
        return [str(self.micropython), "-X", f"heapsize={self.heap_k}K", str(self.main)]

    def start(self) -> None:
        """Power on (or reboot after ``kill``): same flash, fresh RAM, a quiet scanner line."""
        if self.alive:
            raise SimError(f"{self.device} is already running")
        if not self.main.exists():
            raise SimError(f"firmware entry point not found: {self.main}")
        self.scanner.flush()
        with self.console_path.open("ab") as console:
            console.write(f"--- power on #{self.boots + 1} ---\n".encode())
            console.flush()
            self.proc = subprocess.Popen(
                self.command(),
                cwd=self.workdir,
                env=self.env(),
                stdin=subprocess.DEVNULL,
                stdout=console,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # our own process group: kill() takes the whole device down
            )
        self.boots += 1

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def kill(self) -> None:
        """Power cut: SIGKILL, no chance to flush anything; the scanner module loses unsaved settings."""
        if self.proc is not None:
            if self.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.scanner.power_cycle()

    def reboot(self) -> None:
        self.kill()
        self.start()

    def close(self) -> None:
        self.kill()
        self.scanner.close()

    def console(self) -> str:
        try:
            return self.console_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # -- events -----------------------------------------------------------------------------------
    def events(self, kind: str | None = None) -> list[Event]:
        self.log.poll()
        if kind is None:
            return list(self.log.events)
        return [e for e in self.log.events if e.get("ev") == kind]

    def mark(self) -> int:
        """An index into the event list: pass it as ``after`` to wait only for newer events."""
        self.log.poll()
        return len(self.log.events)

    def wait_event(
        self,
        predicate: Callable[[Event], bool],
        *,
        after: int = 0,
        timeout: float = 20.0,
        what: str = "event",
    ) -> Event:
        def check() -> Event | None:
            self._check_alive()
            self.log.poll()
            for ev in self.log.events[after:]:
                if predicate(ev):
                    return ev
            return None

        return wait_until(check, timeout, f"{self.device}: {what}")

    def supervise(self) -> bool:
        """Restart the VM when the firmware reset itself (exit 75), as the chip would; True if it did."""
        if self.proc is not None and self.proc.poll() == REBOOT_EXIT:
            self.proc = None
            self.start()  # a soft reset: the scanner module keeps its power and settings
            return True
        return False

    def _check_alive(self) -> None:
        self.supervise()
        if self.proc is not None and self.proc.poll() is not None:
            tail = "\n".join(self.console().splitlines()[-30:])
            raise SimError(f"{self.device} firmware exited with {self.proc.returncode}:\n{tail}")

    # -- the OLED ---------------------------------------------------------------------------------
    def screen(self) -> Frame | None:
        """The latest OLED frame, or None before the first one is written."""
        try:
            return read_pbm(self.out / "oled.pbm")
        except (FileNotFoundError, PbmError):
            return None

    def frames(self) -> list[Path]:
        return sorted(self.out.glob("oled-*.pbm"))

    def wait_screen(
        self, predicate: Callable[[Frame], bool], *, timeout: float = 20.0, what: str = "screen"
    ) -> Frame:
        def check() -> Frame | None:
            self._check_alive()
            frame = self.screen()
            return frame if frame is not None and predicate(frame) else None

        return wait_until(check, timeout, f"{self.device}: {what}")

    def wait_text(self, *texts: str, timeout: float = 20.0, max_errors: int = 0) -> Frame:
        """Wait until every text appears on the OLED, drawn with the VM's 8x8 font."""
        return self.wait_screen(
            lambda f: all(f.contains_text(t, max_errors=max_errors) for t in texts),
            timeout=timeout,
            what=f"OLED showing {texts!r}",
        )

    def screenshot(self, path: Path, *, scale: int = 4, palette: str = "white") -> Path:
        frame = self.screen()
        if frame is None:
            raise SimError(f"{self.device} has not drawn a frame yet")
        return render_png(frame, path, scale=scale, palette=palette)

    # -- inputs -----------------------------------------------------------------------------------
    def scan(self, code: str, *, wait_same_code: bool = True) -> bytes:
        """Hold a code in front of the virtual scanner (waiting out its same-code delay by default)."""
        return self.scanner.present(code, wait_same_code=wait_same_code)

    def press(self, button: str) -> None:
        """Press a button (``ok``, ``up``, ``down``): one line into HX_OUT/buttons."""
        path = self.out / "buttons"
        line = (button.strip() + "\n").encode()
        if path.is_fifo():
            # Non-blocking: a FIFO nobody reads (firmware down) must not hang the simulator.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:
                raise SimError(f"{self.device}: nobody reads the buttons FIFO ({exc})") from exc
            try:
                os.write(fd, line)
            finally:
                os.close(fd)
        else:
            with path.open("ab") as fh:
                fh.write(line)
