# A GM65 on a serial port: pyserial on a pty (the scanner's side), read by the firmware's own driver.
from __future__ import annotations

import asyncio
import os

from reader import compat
from reader.serialport import SerialStream


def test_the_firmware_gm65_driver_reads_code_lines_through_pyserial() -> None:
    compat.install()
    from hx.gm65 import Scanner

    scanner_side, port_side = os.openpty()
    stream = SerialStream(os.ttyname(port_side), 9600)

    async def main() -> list[bytes | None]:
        sc = Scanner(*stream.streams())
        first = asyncio.ensure_future(sc.readline())
        await asyncio.sleep(0.05)
        os.write(scanner_side, b"HX-SER")
        await asyncio.sleep(0.02)
        os.write(scanner_side, b"-1\r\nNEXT\r\n")  # one code in two reads, then another
        return [await asyncio.wait_for(first, 10), await asyncio.wait_for(sc.readline(), 10)]

    try:
        assert asyncio.run(main()) == [b"HX-SER-1", b"NEXT"]
        stream.set_baud(115200)
        assert stream.s.baudrate == 115200
        stream.write(b"\x7e\x00")
        assert os.read(scanner_side, 2) == b"\x7e\x00"
    finally:
        stream.close()
        os.close(scanner_side)
        os.close(port_side)
