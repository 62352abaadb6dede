# GM65/GM861 set-up, run once at start: probe at 9600/115200 and configure with "7E 00" zone commands.
# Imported by Scanner.start() and unloaded afterwards (hx/gm65.py keeps the line reader and the
# frame exchange, Scanner.command; this module only decides what to ask).
from micropython import const

ZONE_SETTINGS = const(0x0000)
ZONE_INTERFACE = const(0x000D)
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


async def _ensure(sc, zone, want):
    """Read `zone`, write want(value) if that differs (an unreadable zone is written); 1 if written."""
    rep = await sc.command(read_zone(zone))
    cur = rep[1][0] if rep and rep[0] == 0 and rep[1] else None
    new = want(cur or 0)
    if cur == new:
        return 0
    await sc.command(write_zone(zone, new))
    return 1


async def start(sc, mode, same_code_s):
    """Probe at 9600 then 115200; configure a module that answers (see docs/firmware.md).

    Returns (baud, version) of the module found, or None (Scanner then reads plain lines)."""
    found = None
    for baud in BAUDS:
        if not sc.switch_baud(baud) and baud != BAUDS[0]:
            break  # a fixed-rate link: one probe at whatever rate it runs
        rep = await sc.command(read_zone(ZONE_VERSION))
        if rep and rep[0] == 0:
            found = baud, rep[1][0] if rep[1] else None
            break
    if not found:
        sc.switch_baud(BAUDS[0])
        sc.log("scanner", {"probe": "no answer", "driver": "line"})
        return None
    # Each zone is read and written only if it differs; the EEPROM is saved only when something
    # changed (a boot loop must not wear it out: it is saved at most once per change).
    changed = await _ensure(sc, ZONE_INTERFACE, lambda v: v & 0xFC)  # bits 1:0 = 00: serial (TTL) output
    changed += await _ensure(sc, ZONE_SETTINGS, lambda v: (v & 0xFC) | mode)
    changed += await _ensure(sc, ZONE_SAME_CODE, lambda v: 0x80 | same_code_s if same_code_s else 0)
    changed += await _ensure(sc, ZONE_TAIL, lambda v: (v & 0x9F) | (TAIL_CRLF << 5))
    if changed:
        await sc.command(SAVE)
    sc.log("scanner", {"probe": "gm", "baud": found[0], "version": found[1], "saved": changed > 0})
    return found
