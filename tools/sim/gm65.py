"""Pure model of a GM65/GM861 UART QR scanner module: zone table and behaviour.

No I/O here: ``VirtualModule.receive(bytes)`` returns the bytes the module would answer and
``VirtualModule.present(code, now)`` returns what it would emit for a decoded code, so the whole
wire format can be unit-tested without a pty. The frame codec is ``tools.sim.gm65_codec`` (its names
are re-exported here); the pty edge lives in ``tools.sim.pty_scanner``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from tools.sim.gm65_codec import (
    ACK,
    HEADER,
    MAX_DATA,
    NO_CRC,
    REPLY_HEADER,
    Command,
    CommandParser,
    FrameType,
    Reply,
    ReplyParser,
    baud_to_zone,
    crc16_xmodem,
    encode_command,
    encode_reply,
    zone_to_baud,
)

__all__ = [
    "ACK",
    "HEADER",
    "MAX_DATA",
    "NO_CRC",
    "REPLY_HEADER",
    "Command",
    "CommandParser",
    "FrameType",
    "Reply",
    "ReplyParser",
    "baud_to_zone",
    "crc16_xmodem",
    "encode_command",
    "encode_reply",
    "zone_to_baud",
    "Mode",
    "TAILS",
    "TAIL_NAMES",
    "VirtualModule",
    "Zone",
    "factory_zones",
]

ZONE_COUNT = 0x0100


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

    def blocked_for(self, code: bytes | str, now: float) -> float:
        """Seconds until the same-code delay lets ``code`` through again (0 when it would be emitted)."""
        raw = code.encode() if isinstance(code, str) else bytes(code)
        delay = self.same_code_delay_s
        if not delay or raw != self._last_code:
            return 0.0
        return max(0.0, delay - (now - self._last_at))

    def _emit(self, raw: bytes, now: float) -> bytes:
        if not self.serial_output:
            return b""
        delay = self.same_code_delay_s
        if delay and raw == self._last_code and now - self._last_at < delay:
            return b""
        self._last_code, self._last_at = raw, now
        return raw + self.tail
