# GM65/GM861 UART QR scanner driver: "7E 00" zone commands to probe/configure, then a code line reader.
import asyncio
import time
from micropython import const

ZONE_SETTINGS = const(0x0000)
ZONE_SAME_CODE = const(0x0013)
ZONE_TAIL = const(0x0060)
ZONE_VERSION = const(0x00E2)
MODE_COMMAND = const(0b01)
MODE_CONTINUOUS = const(0b10)
TAIL_CRLF = const(0b01)
MAX_LINE = const(600)
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


def parse_reply(buf):
    """Find a module reply `02 00 | status | len | data | crc` in buf.

    Returns (status, data, rest) or None when no complete reply is there yet. CRC is not checked: some
    modules send 0x33 0x31 regardless, and a wrong byte only makes us fall back to defaults.
    """
    i = buf.find(b"\x02\x00")
    if i < 0 or len(buf) < i + 4:
        return None
    n = buf[i + 3]
    end = i + 4 + n + 2
    if len(buf) < end:
        return None
    return buf[i + 2], bytes(buf[i + 4:i + 4 + n]), buf[end:]


class LineSplitter:
    """Splits scanner bytes into lines on CR and/or LF; an over-long line is discarded, not truncated."""

    def __init__(self):
        self.buf = b""
        self.overflow = False

    def feed(self, data):
        out = []
        self.buf += data
        while True:
            i = -1
            for j in range(len(self.buf)):
                if self.buf[j] in (10, 13):
                    i = j
                    break
            if i < 0:
                break
            line = self.buf[:i]
            self.buf = self.buf[i + 1:]
            if self.overflow:
                self.overflow = False
                out.append(None)  # None = "garbage line dropped"
            elif line:
                out.append(line)
        if len(self.buf) > MAX_LINE:
            self.buf = b""
            self.overflow = True
        return out

    def flush(self):
        """Line idle: a module without a tail ends a code by going quiet."""
        line, self.buf = self.buf, b""
        if self.overflow:
            self.overflow = False
            return None
        return line or None


class Scanner:
    """A GM-family module on a stream (asyncio reader/writer) whose baud rate `set_baud` can change.

    start() probes at 9600 and 115200; if the module answers it is configured (trigger mode, same-code
    delay, CRLF tail, saved). If nothing answers it is used as a plain line reader: many modules work
    out of the box, and a wrong guess must never stop scanning.
    """

    def __init__(self, reader, writer, set_baud=None, log=None, reply_ms=300, idle_ms=80):
        self.r = reader
        self.w = writer
        self.set_baud = set_baud
        self.log = log or (lambda *a: None)
        self.reply_ms = reply_ms
        self.idle_ms = idle_ms
        self.lines = LineSplitter()
        self.pending = []
        self.gm = False
        self.baud = None
        self.version = None

    async def _read(self, timeout_ms):
        try:
            return await asyncio.wait_for_ms(self.r.read(64), timeout_ms)
        except asyncio.TimeoutError:
            return b""

    async def command(self, data):
        """Send one frame and wait for the reply: (status, data) or None on no answer.

        Bytes around the reply (a code scanned meanwhile) are kept for readline(), never discarded.
        """
        self.w.write(data)
        await self.w.drain()
        buf = b""
        # A real deadline: a read may return at once with nothing (a non-blocking pty) or with one byte
        # at 9600 baud, so counting calls would cut the reply window short.
        deadline = time.ticks_add(time.ticks_ms(), self.reply_ms)
        while time.ticks_diff(deadline, time.ticks_ms()) > 0:
            chunk = await self._read(50)
            if not chunk:
                await asyncio.sleep_ms(5)
                continue
            if chunk:
                buf += chunk
                rep = parse_reply(buf)
                if rep:
                    self.pending.extend(self.lines.feed(buf[:buf.find(b"\x02\x00")] + rep[2]))
                    return rep[0], rep[1]
        if buf:
            self.pending.extend(self.lines.feed(buf))
        return None

    async def start(self, mode=MODE_CONTINUOUS, same_code_s=3):
        for baud in BAUDS:
            if self.set_baud:
                self.set_baud(baud)
            elif baud != BAUDS[0]:
                break
            rep = await self.command(read_zone(ZONE_VERSION))
            if rep and rep[0] == 0:
                self.gm, self.baud = True, baud
                self.version = rep[1][0] if rep[1] else None
                break
        if not self.gm:
            if self.set_baud:
                self.set_baud(BAUDS[0])
            self.log("scanner", {"probe": "no answer", "driver": "line"})
            return False
        rep = await self.command(read_zone(ZONE_SETTINGS))
        settings = rep[1][0] if rep and rep[0] == 0 and rep[1] else 0
        await self.command(write_zone(ZONE_SETTINGS, (settings & 0xFC) | mode))
        delay = 0x80 | same_code_s if same_code_s else 0
        await self.command(write_zone(ZONE_SAME_CODE, delay))
        rep = await self.command(read_zone(ZONE_TAIL))
        tail = rep[1][0] if rep and rep[0] == 0 and rep[1] else 0
        await self.command(write_zone(ZONE_TAIL, (tail & 0x9F) | (TAIL_CRLF << 5)))
        await self.command(SAVE)
        self.log("scanner", {"probe": "gm", "baud": self.baud, "version": self.version})
        return True

    async def trigger(self):
        """Command-trigger mode: ask for one read (zone 0x0002 bit0)."""
        self.w.write(write_zone(0x0002, 0x01))
        await self.w.drain()

    async def readline(self):
        """The next raw line (bytes, tail stripped) or None for a dropped garbage line."""
        while not self.pending:
            if self.lines.buf:
                chunk = await self._read(self.idle_ms)
                if not chunk:
                    line = self.lines.flush()
                    return line
            else:
                chunk = await self.r.read(64)
                if not chunk:
                    await asyncio.sleep_ms(20)  # a non-blocking port with nothing to read
                    continue
            if chunk.startswith(b"\x02\x00"):
                rep = parse_reply(chunk)  # a late command reply (e.g. to a trigger) is not a code
                if rep:
                    chunk = rep[2]
            self.pending.extend(self.lines.feed(chunk))
        return self.pending.pop(0)
