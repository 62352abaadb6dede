"""The pty edge of the virtual scanner: a GM65 module model (``gm65.VirtualModule``) on a pseudo-terminal.

The firmware opens the pty slave as its scanner UART; a background thread reads what the firmware
sends (command frames), lets the pure model answer, and writes the answer back. ``present()`` types a
code as the module would emit it; ``inject()`` writes raw bytes (noise) onto the line.
"""

from __future__ import annotations

import contextlib
import os
import select
import termios
import threading
import time
import tty

from tools.sim.gm65 import VirtualModule


class PtyScanner:
    """A virtual scanner module whose UART is the slave side of a pty (``.port``)."""

    def __init__(self, module: VirtualModule | None = None, *, pace_baud: int = 0) -> None:
        self.module = module or VirtualModule()
        # 0: bytes appear at once. A baud rate: they trickle in at that line speed (8N1, 10 bits a
        # byte), so the firmware sees replies and codes split across reads as on a real UART.
        self.pace_baud = pace_baud
        self._master, self._slave = os.openpty()
        # Raw mode before anyone opens the port: a cooked slave would echo our codes back to us and
        # turn CRLF into LF, which is not what a UART does.
        tty.setraw(self._slave)
        attrs = termios.tcgetattr(self._slave)
        attrs[6][termios.VMIN] = 0
        attrs[6][termios.VTIME] = 0
        termios.tcsetattr(self._slave, termios.TCSANOW, attrs)
        os.set_blocking(self._slave, False)  # our slave fd only drains the line, it must never block
        self.port = os.ttyname(self._slave)
        self.received = bytearray()  # everything the firmware sent, for tests and diagnostics
        self.sent = bytearray()  # everything the module put on the line
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"pty-scanner {self.port}", daemon=True)
        self._thread.start()

    # -- the line ----------------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if not data:
            return
        with self._lock:
            view = memoryview(data)
            step = 1 if self.pace_baud else len(data)
            while view:
                if self.pace_baud:
                    time.sleep(10 / self.pace_baud)
                try:
                    n = os.write(self._master, view[:step])
                except BlockingIOError:
                    time.sleep(0.01)
                    continue
                view = view[n:]
            self.sent += data

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._master], [], [], 0.1)
            except (OSError, ValueError):
                return
            if not ready:
                continue
            try:
                chunk = os.read(self._master, 4096)
            except OSError:
                # EIO when no slave is open; we keep our own slave fd open so this is transient.
                time.sleep(0.05)
                continue
            if not chunk:
                continue
            with self._lock:
                self.received += chunk
                answer = self.module.receive(chunk, time.monotonic())
            self._write(answer)

    # -- what tests and the CLI use -----------------------------------------------------------
    def present(self, code: bytes | str, *, wait_same_code: bool = False) -> bytes:
        """Hold a code in front of the module; returns the bytes emitted (empty if suppressed/held).

        The module suppresses a code it read less than its same-code delay ago (the firmware turns
        that on); ``wait_same_code`` waits the delay out first, like staff re-presenting a ticket.
        """
        if wait_same_code:
            with self._lock:
                wait = self.module.blocked_for(code, time.monotonic())
            if wait:
                time.sleep(wait + 0.05)
        with self._lock:
            data = self.module.present(code, time.monotonic())
        self._write(data)
        return data

    def inject(self, data: bytes) -> None:
        """Put raw bytes on the scanner line (noise, a half frame, a line without a tail...)."""
        self._write(data)

    def flush(self) -> None:
        """Drop bytes nobody read yet, as a UART does while the MCU is powered off."""
        # The pty moves bytes to the slave side asynchronously: let in-flight ones land, then drop them.
        time.sleep(0.05)
        with contextlib.suppress(termios.error):
            termios.tcflush(self._slave, termios.TCIOFLUSH)
        while True:
            try:
                if not os.read(self._slave, 4096):
                    break
            except OSError:  # BlockingIOError when empty
                break

    def power_cycle(self) -> None:
        """The board lost power: the module forgets unsaved settings and the line is cleared."""
        with self._lock:
            self.module.power_cycle()
        self.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> PtyScanner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
