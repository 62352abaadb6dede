"""Pure model of a GM65/GM861 UART QR scanner module: command-frame codec, zone table and behaviour.

No I/O here: ``VirtualModule.receive(bytes)`` returns the bytes the module would answer and
``VirtualModule.present(code, now)`` returns what it would emit for a decoded code, so the whole
wire format can be unit-tested without a pty. The pty edge lives in ``tools.sim.pty_scanner``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

HEADER = b"\x7e\x00"
REPLY_HEADER = b"\x02\x00"
NO_CRC = b"\xab\xcd"  # the literal "don't check" CRC a host may send instead of the real one

# Largest data field we accept in one command; real modules take far fewer zones per frame.
MAX_DATA = 64
ZONE_COUNT = 0x0100


class FrameType(IntEnum):
    READ = 0x07
    WRITE = 0x08
    SAVE = 0x09
    HEARTBEAT = 0x0A  # GM861 only


class Zone(IntEnum):
    SETTINGS = 0x0000  # bit6 beep, bits5:4 aim, bits3:2 light, bits1:0 mode
    TRIGGER = 0x0002  # bit0: trigger one scan
    READ_INTERVAL = 0x0005
    SINGLE_TIMEOUT = 0x0006
    INTERFACE = 0x000D  # bits1:0 must be 00 for serial output
    SAME_CODE_DELAY = 0x0013  # bit7 enable, bits6:0 delay
    BAUD = 0x002A  # 2 bytes, little endian divisor of 3 MHz
    SYMBOLOGY = 0x002C
    QR_ENABLE = 0x003F
    TAIL = 0x0060  # bits6:5: 00 CR, 01 CRLF, 10 TAB, 11 none
    VERSION = 0x00E2  # read-only software version


class Mode(IntEnum):
    MANUAL = 0b00  # hardware trigger button
    COMMAND = 0b01  # scans only after a trigger command
    CONTINUOUS = 0b10
    SENSOR = 0b11


TAILS: dict[int, bytes] = {0b00: b"\r", 0b01: b"\r\n", 0b10: b"\t", 0b11: b""}
TAIL_NAMES: dict[str, int] = {"cr": 0b00, "crlf": 0b01, "tab": 0b10, "none": 0b11}

# Same-code delay unit: the low 7 bits of zone 0x0013 count roughly one second each (0x85 ~ 5 s).
SAME_CODE_DELAY_UNIT_S = 1.0

READ_ONLY = frozenset({int(Zone.VERSION)})


def crc16_xmodem(data: bytes) -> int:
    """CRC-16/XMODEM: poly 0x1021, init 0, no reflection, MSB first."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def baud_to_zone(baud: int) -> bytes:
    """The two zone bytes for a baud rate (little-endian divisor of 3 MHz: 9600 -> 39 01)."""
    div = int(3_000_000 / baud + 0.5)
    return bytes((div & 0xFF, div >> 8))


def zone_to_baud(raw: bytes) -> int:
    div = raw[0] | (raw[1] << 8)
    if div == 0:
        return 0
    # Snap to the standard rates the module offers.
    approx = 3_000_000 / div
    standard = (1200, 4800, 9600, 14400, 19200, 38400, 57600, 115200)
    return min(standard, key=lambda b: abs(b - approx))


@dataclass(frozen=True)
class Command:
    """One host -> module command frame."""

    type: int
    addr: int
    data: bytes
    crc_ok: bool = True
    crc_skipped: bool = False

    def encode(self, *, check: bool = True) -> bytes:
        return encode_command(self.type, self.addr, self.data, check=check)


@dataclass(frozen=True)
class Reply:
    """One module -> host reply frame."""

    status: int
    data: bytes

    @property
    def ok(self) -> bool:
        return self.status == 0


def encode_command(ftype: int, addr: int, data: bytes, *, check: bool = True) -> bytes:
    """``7E 00 | Type | Len | AddrH AddrL | Data | CRC`` (CRC over Type..Data, or AB CD)."""
    if not 0 < len(data) <= 0xFF:
        raise ValueError("command data must be 1..255 bytes")
    body = bytes((ftype, len(data), (addr >> 8) & 0xFF, addr & 0xFF)) + data
    crc = crc16_xmodem(body).to_bytes(2, "big") if check else NO_CRC
    return HEADER + body + crc


def encode_reply(status: int, data: bytes) -> bytes:
    """``02 00 | Status | Len | Data | CRC`` with the CRC over Status..Data."""
    body = bytes((status, len(data))) + data
    return REPLY_HEADER + body + crc16_xmodem(body).to_bytes(2, "big")


ACK = encode_reply(0x00, b"\x00")  # 02 00 00 01 00 33 31: the answer to a successful write/save


class CommandParser:
    """Incremental parser of the host -> module byte stream.

    Bytes that cannot start a frame are skipped (and counted), like the module's UART state machine
    does. Frames with a wrong CRC are returned with ``crc_ok=False`` so the module can ignore them.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self.skipped = 0

    def feed(self, chunk: bytes) -> list[Command]:
        self._buf += chunk
        out: list[Command] = []
        while True:
            start = self._buf.find(HEADER)
            if start < 0:
                # Keep a trailing 0x7E: it may be the first half of a header split across reads.
                keep = 1 if self._buf.endswith(b"\x7e") else 0
                self.skipped += len(self._buf) - keep
                del self._buf[: len(self._buf) - keep]
                return out
            if start:
                self.skipped += start
                del self._buf[:start]
            if len(self._buf) < 4:
                return out
            length = self._buf[3]
            if length == 0 or length > MAX_DATA:
                # Not a plausible frame: drop the header byte and resynchronise.
                self.skipped += 1
                del self._buf[:1]
                continue
            total = 2 + 4 + length + 2
            if len(self._buf) < total:
                return out
            frame = bytes(self._buf[:total])
            del self._buf[:total]
            body, crc = frame[2:-2], frame[-2:]
            skipped = crc == NO_CRC
            ok = skipped or int.from_bytes(crc, "big") == crc16_xmodem(body)
            out.append(
                Command(
                    type=body[0],
                    addr=(body[2] << 8) | body[3],
                    data=body[4:],
                    crc_ok=ok,
                    crc_skipped=skipped,
                )
            )


class ReplyParser:
    """Incremental parser of the module -> host reply stream (used by tests and host tools)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[Reply]:
        self._buf += chunk
        out: list[Reply] = []
        while True:
            start = self._buf.find(REPLY_HEADER)
            if start < 0:
                keep = 1 if self._buf.endswith(b"\x02") else 0
                del self._buf[: len(self._buf) - keep]
                return out
            del self._buf[:start]
            if len(self._buf) < 4:
                return out
            total = 4 + self._buf[3] + 2
            if len(self._buf) < total:
                return out
            frame = bytes(self._buf[:total])
            del self._buf[:total]
            body = frame[2:-2]
            if int.from_bytes(frame[-2:], "big") != crc16_xmodem(body):
                continue
            out.append(Reply(status=body[0], data=body[2:]))


def factory_zones(version: int = 0x87) -> bytearray:
    """The zone table of a module fresh from the factory (as this simulator models it)."""
    z = bytearray(ZONE_COUNT)
    z[Zone.SETTINGS] = 0x40 | 0x14 | Mode.MANUAL  # beep on, aim/light normal, manual trigger
    z[Zone.READ_INTERVAL] = 0x0A
    z[Zone.SINGLE_TIMEOUT] = 0x32
    z[Zone.SAME_CODE_DELAY] = 0x00
    z[Zone.BAUD : Zone.BAUD + 2] = baud_to_zone(9600)
    z[Zone.SYMBOLOGY] = 0x00
    z[Zone.QR_ENABLE] = 0x01
    z[Zone.TAIL] = TAIL_NAMES["crlf"] << 5
    z[Zone.VERSION] = version
    return z


@dataclass
class VirtualModule:
    """Behaviour of one scanner module: answers command frames and emits decoded codes.

    ``present(code, now)`` models a code held in front of the window: in manual, continuous and
    sensor modes it is emitted at once (subject to the same-code delay); in command-trigger mode
    it is held until the host writes the trigger zone. ``now`` is injected (seconds, monotonic).
    """

    version: int = 0x87
    zones: bytearray = field(default_factory=bytearray)
    saved: bytearray = field(default_factory=bytearray)
    log: list[Command] = field(default_factory=list)
    writes: int = 0
    saves: int = 0
    ignored: int = 0  # frames with a bad CRC or an unknown type: a real module stays silent
    _parser: CommandParser = field(default_factory=CommandParser)
    _pending: list[bytes] = field(default_factory=list)
    _last_code: bytes = b""
    _last_at: float = -1e9

    def __post_init__(self) -> None:
        if not self.zones:
            self.zones = factory_zones(self.version)
        if not self.saved:
            self.saved = bytearray(self.zones)

    # -- settings views -------------------------------------------------------------------
    @property
    def mode(self) -> Mode:
        return Mode(self.zones[Zone.SETTINGS] & 0b11)

    @property
    def tail(self) -> bytes:
        return TAILS[(self.zones[Zone.TAIL] >> 5) & 0b11]

    @property
    def baud(self) -> int:
        return zone_to_baud(bytes(self.zones[Zone.BAUD : Zone.BAUD + 2]))

    @property
    def same_code_delay_s(self) -> float:
        raw = self.zones[Zone.SAME_CODE_DELAY]
        if not raw & 0x80:
            return 0.0
        return (raw & 0x7F) * SAME_CODE_DELAY_UNIT_S

    @property
    def serial_output(self) -> bool:
        return self.zones[Zone.INTERFACE] & 0b11 == 0

    @property
    def skipped_bytes(self) -> int:
        return self._parser.skipped

    def power_cycle(self) -> None:
        """Unsaved zone writes are lost when the module loses power; saved ones persist."""
        self.zones = bytearray(self.saved)
        self._pending.clear()
        self._parser = CommandParser()

    # -- host -> module -----------------------------------------------------------------
    def receive(self, chunk: bytes, now: float = 0.0) -> bytes:
        """Feed bytes the host sent; return the bytes the module answers (replies and codes)."""
        out = bytearray()
        for cmd in self._parser.feed(chunk):
            self.log.append(cmd)
            out += self._execute(cmd, now)
        return bytes(out)

    def _execute(self, cmd: Command, now: float) -> bytes:
        if not cmd.crc_ok:
            self.ignored += 1
            return b""
        if cmd.type == FrameType.READ:
            count = cmd.data[0] or 1
            if cmd.addr + count > ZONE_COUNT:
                return encode_reply(0x01, b"")
            return encode_reply(0x00, bytes(self.zones[cmd.addr : cmd.addr + count]))
        if cmd.type == FrameType.WRITE:
            if cmd.addr + len(cmd.data) > ZONE_COUNT:
                return encode_reply(0x01, b"")
            for i, value in enumerate(cmd.data):
                if cmd.addr + i not in READ_ONLY:
                    self.zones[cmd.addr + i] = value
            self.writes += 1
            reply = ACK
            if self.zones[Zone.TRIGGER] & 0x01:
                # The trigger bit is self-clearing: it starts one read of what is in view.
                self.zones[Zone.TRIGGER] &= 0xFE
                reply += self._release_pending(now)
            return reply
        if cmd.type == FrameType.SAVE:
            if cmd.data[0] == 0x00:
                self.saved = bytearray(self.zones)
                self.saves += 1
            else:
                # 0x02 (and other values) restore the factory table, as the documented constant does.
                self.zones = factory_zones(self.version)
            return ACK
        if cmd.type == FrameType.HEARTBEAT:
            return ACK
        self.ignored += 1
        return b""

    def _release_pending(self, now: float) -> bytes:
        if not self._pending:
            return b""
        code = self._pending.pop(0)
        return self._emit(code, now)

    # -- codes in front of the window -------------------------------------------------------
    def present(self, code: bytes | str, now: float) -> bytes:
        """A code is held in front of the module; return the bytes it emits on the UART now."""
        raw = code.encode() if isinstance(code, str) else bytes(code)
        if self.mode == Mode.COMMAND:
            self._pending = [raw]  # one code in view at a time
            return b""
        return self._emit(raw, now)

    def _emit(self, raw: bytes, now: float) -> bytes:
        if not self.serial_output:
            return b""
        delay = self.same_code_delay_s
        if delay and raw == self._last_code and now - self._last_at < delay:
            return b""
        self._last_code, self._last_at = raw, now
        return raw + self.tail
