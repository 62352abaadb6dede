# GM65/GM861 UART QR scanner driver: the code line reader (probe/configure is hx/gm65_setup.py).
import asyncio
import time
from micropython import const

from hx import lazy

MODE_COMMAND = const(0b01)
MODE_CONTINUOUS = const(0b10)
MAX_LINE = const(600)
# 7E 00 08 01 00 02 01 + CRC: write zone 0x0002 = 1, "read once" in command-trigger mode.
TRIGGER = b"\x7e\x00\x08\x01\x00\x02\x01\x02\xda"


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


def _eol(buf, start):
    """Index of the first CR or LF in buf at or after start, or -1 (a C-level search, not a loop)."""
    i = buf.find(b"\n", start)
    j = buf.find(b"\r", start)
    return j if i < 0 else (i if j < 0 or i < j else j)


class LineSplitter:
    """Splits scanner bytes into lines on CR and/or LF; an over-long line is discarded, not truncated.

    The line is gathered in one fixed buffer (MAX_LINE): feeding a chunk allocates nothing but the
    lines it completes (at 9600 baud a UART read often brings one byte)."""

    def __init__(self):
        self.buf = bytearray(MAX_LINE)
        self.n = 0
        self.overflow = False

    def _take(self, data, a, b):
        if self.overflow:
            return  # the rest of an over-long line: dropped up to its end
        k = b - a
        if self.n + k > MAX_LINE:
            self.n = 0
            self.overflow = True
        elif k == 1:
            self.buf[self.n] = data[a]
            self.n += 1
        else:
            self.buf[self.n:self.n + k] = data if k == len(data) else memoryview(data)[a:b]
            self.n += k

    def feed(self, data):
        """The lines `data` completes: a list, or () when none (None = a garbage line dropped)."""
        out = None
        a = 0
        while True:
            e = _eol(data, a)
            b = len(data) if e < 0 else e
            if b > a:
                self._take(data, a, b)
            if e < 0:
                return out or ()
            a = e + 1
            if self.overflow:
                self.overflow = False
                line = None
            elif self.n:
                line = bytes(memoryview(self.buf)[0:self.n])
            else:
                continue  # CR LF: the LF ends an empty line
            self.n = 0
            if out is None:
                out = []
            out.append(line)

    def pending(self):
        return self.n > 0

    def flush(self):
        """Line idle: a module without a tail ends a code by going quiet."""
        line = bytes(memoryview(self.buf)[0:self.n]) if self.n else None
        self.n = 0
        if self.overflow:
            self.overflow = False
            return None
        return line


def strip_reply(chunk, held):
    """(code bytes, held): module replies (02 00 ...) taken out of a chunk of the code stream, wherever
    they are (a reply to a trigger can come glued to the end of a code). An incomplete reply at the
    end is held back for the next chunk. A code never contains 0x02 (control bytes are not codes)."""
    if held:
        chunk = held + chunk
        held = b""
    while True:
        i = chunk.find(b"\x02\x00")
        if i < 0:
            return chunk, held
        rep = parse_reply(chunk[i:])
        if rep is None:
            if len(chunk) - i < 64:
                return chunk[:i], chunk[i:]
            return chunk, held  # too long to be a reply still coming: leave it to the line reader
        chunk = chunk[:i] + rep[2]


class Scanner:
    """A GM-family module on a stream (asyncio reader/writer) whose baud rate `set_baud` can change.

    start() probes at 9600 and 115200; if the module answers it is configured (trigger mode, same-code
    delay, CRLF tail, saved). If nothing answers it is used as a plain line reader: many modules work
    out of the box, and a wrong guess must never stop scanning.

    The set-up code (hx/gm65_setup.py) decides what to ask; it talks to the module only through
    switch_baud() and command(), and reports what it found as start()'s result.
    """

    def __init__(self, reader, writer, set_baud=None, log=None, reply_ms=300, idle_ms=80):
        self.r = reader
        self.w = writer
        self.set_baud = set_baud
        self.log = log or (lambda *a: None)
        self.reply_ms = reply_ms
        self.idle_ms = idle_ms
        self.lines = LineSplitter()
        self._pending = []  # complete lines not yet handed out by readline()
        self.held = b""  # the start of a module reply split across reads
        self.gm = False
        self.baud = None
        self.version = None

    async def _read(self, timeout_ms):
        try:
            return await asyncio.wait_for_ms(self.r.read(64), timeout_ms)
        except asyncio.TimeoutError:
            return b""

    async def start(self, mode=MODE_CONTINUOUS, same_code_s=3):
        """Probe and configure the module (hx/gm65_setup.py). That code runs once per boot, so it is
        imported here and unloaded afterwards instead of keeping ~5 KB of bytecode for the uptime."""
        found = await lazy.run("hx.gm65_setup", "start", self, mode, same_code_s)
        if found:
            self.gm = True
            self.baud, self.version = found
        return self.gm

    def switch_baud(self, baud):
        """Set the link's rate; False when this stream's rate cannot be changed."""
        if not self.set_baud:
            return False
        self.set_baud(baud)
        return True

    async def command(self, data):
        """Send one frame and wait for the reply: (status, data) or None on no answer.

        Bytes around the reply (a code scanned meanwhile) are kept for readline(), never discarded.
        """
        await self._send(data)
        buf = b""
        # A real deadline: a read may return at once with nothing (a non-blocking pty) or with one byte
        # at 9600 baud, so counting calls would cut the reply window short.
        deadline = time.ticks_add(time.ticks_ms(), self.reply_ms)
        while time.ticks_diff(deadline, time.ticks_ms()) > 0:
            chunk = await self._read(50)
            if not chunk:
                await asyncio.sleep_ms(5)
                continue
            buf += chunk
            rep = parse_reply(buf)
            if rep:
                self._pending.extend(self.lines.feed(buf[:buf.find(b"\x02\x00")] + rep[2]))
                return rep[0], rep[1]
        if buf:
            self._pending.extend(self.lines.feed(buf))
        return None

    async def _send(self, data):
        self.w.write(data)
        await self.w.drain()

    async def trigger(self):
        """Command-trigger mode: ask for one read (zone 0x0002 bit0)."""
        await self._send(TRIGGER)

    async def readline(self):
        """The next raw line (bytes, tail stripped) or None for a dropped garbage line."""
        while not self._pending:
            if self.lines.pending() or self.held:
                chunk = await self._read(self.idle_ms)
                if not chunk:
                    self.held = b""  # a reply that never completed: noise, not a code
                    if self.lines.pending():
                        return self.lines.flush()
                    continue
            else:
                chunk = await self.r.read(64)
                if not chunk:
                    await asyncio.sleep_ms(20)  # a non-blocking port with nothing to read
                    continue
            # A late command reply (e.g. to a trigger), even glued to a code, is not part of a code.
            chunk, self.held = strip_reply(chunk, self.held)
            self._pending.extend(self.lines.feed(chunk))
        return self._pending.pop(0)
