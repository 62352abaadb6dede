"""GM65/GM861 scanner command-frame codec: CRC-16/XMODEM, host->module commands, module->host replies.

Pure functions and incremental parsers; the module's behaviour is in ``tools.sim.gm65``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

HEADER = b"\x7e\x00"
REPLY_HEADER = b"\x02\x00"
NO_CRC = b"\xab\xcd"  # the literal "don't check" CRC a host may send instead of the real one

# Largest data field we accept in one command; real modules take far fewer zones per frame.
MAX_DATA = 64


class FrameType(IntEnum):
    READ = 0x07
    WRITE = 0x08
    SAVE = 0x09
    HEARTBEAT = 0x0A  # GM861 only


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
