# GM65/GM861 set-up, run once at start: probe at 9600/115200 and configure with "7E 00" zone commands.
# Imported by Scanner.start() and unloaded afterwards (hx/gm65.py keeps only the line reader).
import asyncio
import time
from micropython import const

from hx.gm65 import parse_reply

ZONE_SETTINGS = const(0x0000)
ZONE_SAME_CODE = const(0x0013)
ZONE_TAIL = const(0x0060)
ZONE_VERSION = const(0x00E2)
TAIL_CRLF = const(0b01)
BAUDS = (9600, 115200)


def crc16_xmodem(data):
    crc = 0
    for b in data:
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def frame(typ, addr, data):
    """Host->module frame: 7E 00 | type | len | addrH addrL | data | CRC-16/XMODEM over type..data."""
    body = bytes((typ, len(data), addr >> 8, addr & 0xFF)) + bytes(data)
    crc = crc16_xmodem(body)
    return b"\x7e\x00" + body + bytes((crc >> 8, crc & 0xFF))


def read_zone(addr, count=1):
    return frame(0x07, addr, (count,))


def write_zone(addr, value):
    return frame(0x08, addr, (value,))


SAVE = frame(0x09, 0x0000, (0x00,))  # 7E 00 09 01 00 00 00 DE C8: persist zones to the module's EEPROM


async def command(sc, data):
    """Send one frame and wait for the reply: (status, data) or None on no answer.

    Bytes around the reply (a code scanned meanwhile) are kept for readline(), never discarded.
    """
    sc.w.write(data)
    await sc.w.drain()
    buf = b""
    # A real deadline: a read may return at once with nothing (a non-blocking pty) or with one byte
    # at 9600 baud, so counting calls would cut the reply window short.
    deadline = time.ticks_add(time.ticks_ms(), sc.reply_ms)
    while time.ticks_diff(deadline, time.ticks_ms()) > 0:
        chunk = await sc._read(50)
        if not chunk:
            await asyncio.sleep_ms(5)
            continue
        if chunk:
            buf += chunk
            rep = parse_reply(buf)
            if rep:
                sc.pending.extend(sc.lines.feed(buf[:buf.find(b"\x02\x00")] + rep[2]))
                return rep[0], rep[1]
    if buf:
        sc.pending.extend(sc.lines.feed(buf))
    return None


async def start(sc, mode, same_code_s):
    """Probe at 9600 then 115200; configure a module that answers (see docs/firmware.md)."""
    for baud in BAUDS:
        if sc.set_baud:
            sc.set_baud(baud)
        elif baud != BAUDS[0]:
            break
        rep = await command(sc, read_zone(ZONE_VERSION))
        if rep and rep[0] == 0:
            sc.gm, sc.baud = True, baud
            sc.version = rep[1][0] if rep[1] else None
            break
    if not sc.gm:
        if sc.set_baud:
            sc.set_baud(BAUDS[0])
        sc.log("scanner", {"probe": "no answer", "driver": "line"})
        return False
    rep = await command(sc, read_zone(ZONE_SETTINGS))
    settings = rep[1][0] if rep and rep[0] == 0 and rep[1] else 0
    await command(sc, write_zone(ZONE_SETTINGS, (settings & 0xFC) | mode))
    delay = 0x80 | same_code_s if same_code_s else 0
    await command(sc, write_zone(ZONE_SAME_CODE, delay))
    rep = await command(sc, read_zone(ZONE_TAIL))
    tail = rep[1][0] if rep and rep[0] == 0 and rep[1] else 0
    await command(sc, write_zone(ZONE_TAIL, (tail & 0x9F) | (TAIL_CRLF << 5)))
    await command(sc, SAVE)
    sc.log("scanner", {"probe": "gm", "baud": sc.baud, "version": sc.version})
    return True

