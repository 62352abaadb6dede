# A GM65/GM861 scanner on a serial port (USB-serial or the Pi's UART) through pyserial, as the asyncio
# reader/writer pair the firmware's driver (hx/gm65.py Scanner) reads codes from and configures.
from __future__ import annotations

import asyncio
from typing import Any

import serial


def _wake(f: asyncio.Future[None]) -> None:
    if not f.done():
        f.set_result(None)


class SerialStream:
    """read() waits until bytes arrive (the event loop watches the port's fd), write() + drain() send."""

    def __init__(self, port: str, baud: int = 9600) -> None:
        self.s = serial.Serial(port, baud, timeout=0, write_timeout=2)

    async def read(self, n: int) -> bytes:
        while True:
            data: bytes = self.s.read(n)
            if data:
                return data
            loop = asyncio.get_running_loop()
            ready: asyncio.Future[None] = loop.create_future()
            fd = self.s.fileno()
            loop.add_reader(fd, _wake, ready)
            try:
                await ready
            finally:
                loop.remove_reader(fd)

    def write(self, data: bytes) -> None:
        self.s.write(data)

    async def drain(self) -> None:
        await asyncio.sleep(0)

    def set_baud(self, baud: int) -> None:
        self.s.baudrate = baud

    def streams(self) -> tuple[Any, Any, Any]:
        """(reader, writer, set_baud) as hx.gm65.Scanner takes them."""
        return self, self, self.set_baud

    def close(self) -> None:
        self.s.close()
