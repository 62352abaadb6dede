# Minimal MQTT 3.1.1 packet codec for the load generator: just the packets a scanning device sends and gets.
#
# Why our own and not a client library: the generator simulates hundreds of devices on a 2-core machine that
# also runs the broker and the gateway it measures. One library client per device (threads, per-client state
# machines) would spend the CPU the benchmark is trying to measure; a few byte-level encoders and one
# incremental decoder shared by plain asyncio protocols cost a few microseconds per message.
from __future__ import annotations

import struct
from dataclasses import dataclass

# Control packet types (high nibble of the fixed header), MQTT 3.1.1 section 2.2.1.
CONNECT = 1
CONNACK = 2
PUBLISH = 3
PUBACK = 4
SUBSCRIBE = 8
SUBACK = 9
PINGREQ = 12
PINGRESP = 13
DISCONNECT = 14

MAX_REMAINING_LENGTH = 268_435_455  # four length bytes, section 2.2.3


class CodecError(ValueError):
    """The byte stream broke the MQTT 3.1.1 framing rules (or used something this codec does not speak)."""


@dataclass(frozen=True, slots=True)
class Packet:
    """One decoded control packet: its type, fixed-header flags and variable header + payload bytes."""

    type: int
    flags: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Publish:
    """A decoded PUBLISH: topic, QoS, packet id (0 for QoS 0), payload and the DUP/RETAIN flags."""

    topic: str
    qos: int
    packet_id: int
    payload: bytes
    dup: bool
    retain: bool


def encode_remaining_length(n: int) -> bytes:
    """Variable-length integer of the fixed header: 7 bits per byte, high bit = more bytes follow."""
    if n < 0 or n > MAX_REMAINING_LENGTH:
        raise CodecError(f"remaining length out of range: {n}")
    out = bytearray()
    while True:
        byte = n % 128
        n //= 128
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _utf8(s: str) -> bytes:
    raw = s.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise CodecError("string longer than 65535 bytes")
    return struct.pack("!H", len(raw)) + raw


def _packet(type_: int, flags: int, body: bytes) -> bytes:
    return bytes(((type_ << 4) | flags,)) + encode_remaining_length(len(body)) + body


def encode_connect(client_id: str, keepalive: int = 60, clean_session: bool = True) -> bytes:
    """CONNECT with protocol level 4 (3.1.1), no will, no credentials."""
    if not 0 <= keepalive <= 0xFFFF:
        raise CodecError(f"keepalive out of range: {keepalive}")
    flags = 0x02 if clean_session else 0x00
    body = _utf8("MQTT") + bytes((4, flags)) + struct.pack("!H", keepalive) + _utf8(client_id)
    return _packet(CONNECT, 0, body)


def encode_subscribe(packet_id: int, topic: str, qos: int = 1) -> bytes:
    """SUBSCRIBE to one topic filter; the fixed-header flags must be 0b0010 (section 3.8.1)."""
    _check_packet_id(packet_id)
    if qos not in (0, 1, 2):
        raise CodecError(f"bad qos {qos}")
    return _packet(SUBSCRIBE, 0x02, struct.pack("!H", packet_id) + _utf8(topic) + bytes((qos,)))


def encode_publish(
    topic: str, payload: bytes, qos: int = 1, packet_id: int = 0, dup: bool = False, retain: bool = False
) -> bytes:
    """PUBLISH; a packet id is carried only for QoS 1 and 2."""
    if qos not in (0, 1, 2):
        raise CodecError(f"bad qos {qos}")
    flags = (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    body = _utf8(topic)
    if qos:
        _check_packet_id(packet_id)
        body += struct.pack("!H", packet_id)
    return _packet(PUBLISH, flags, body + payload)


def encode_puback(packet_id: int) -> bytes:
    _check_packet_id(packet_id)
    return bytes((PUBACK << 4, 2)) + struct.pack("!H", packet_id)


PINGREQ_BYTES = bytes((PINGREQ << 4, 0))
DISCONNECT_BYTES = bytes((DISCONNECT << 4, 0))


def _check_packet_id(packet_id: int) -> None:
    if not 1 <= packet_id <= 0xFFFF:
        raise CodecError(f"packet id out of range: {packet_id}")


class Decoder:
    """Incremental decoder: feed it whatever the socket returned, get back the complete packets so far.

    Keeps the partial tail between calls, so packets split across reads (or many packets in one read,
    the normal case under load) come out whole and in order.
    """

    __slots__ = ("_buf",)

    def __init__(self) -> None:
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        """Bytes held back because they do not yet form a whole packet."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Packet]:
        buf = self._buf
        buf += data
        packets: list[Packet] = []
        pos = 0
        end = len(buf)
        while end - pos >= 2:
            header = buf[pos]
            # Remaining length: up to four bytes, 7 bits each.
            length = 0
            mult = 1
            i = pos + 1
            while True:
                if i >= end:
                    self._compact(pos)
                    return packets
                byte = buf[i]
                length += (byte & 0x7F) * mult
                i += 1
                if not byte & 0x80:
                    break
                mult *= 128
                if mult > 128**3:
                    raise CodecError("remaining length longer than four bytes")
            if end - i < length:
                break
            packets.append(Packet(header >> 4, header & 0x0F, bytes(buf[i : i + length])))
            pos = i + length
        self._compact(pos)
        return packets

    def _compact(self, pos: int) -> None:
        if pos:
            del self._buf[:pos]


def decode_publish(packet: Packet) -> Publish:
    """Split a PUBLISH packet's body into topic, packet id and payload."""
    if packet.type != PUBLISH:
        raise CodecError(f"not a PUBLISH: type {packet.type}")
    qos = (packet.flags >> 1) & 0x03
    if qos == 3:
        raise CodecError("PUBLISH with QoS 3")
    body = packet.body
    if len(body) < 2:
        raise CodecError("PUBLISH too short for a topic")
    (tlen,) = struct.unpack_from("!H", body, 0)
    pos = 2 + tlen
    if len(body) < pos + (2 if qos else 0):
        raise CodecError("PUBLISH shorter than its topic / packet id")
    topic = body[2:pos].decode("utf-8")
    packet_id = 0
    if qos:
        (packet_id,) = struct.unpack_from("!H", body, pos)
        pos += 2
    return Publish(topic, qos, packet_id, body[pos:], bool(packet.flags & 0x08), bool(packet.flags & 0x01))


def packet_id_of(packet: Packet) -> int:
    """Packet id of a PUBACK / SUBACK (the first two body bytes)."""
    if len(packet.body) < 2:
        raise CodecError(f"packet type {packet.type} too short for a packet id")
    return int(struct.unpack_from("!H", packet.body, 0)[0])


def connack_code(packet: Packet) -> int:
    """Return code of a CONNACK: 0 accepted, 1-5 refused (section 3.2.2.3)."""
    if packet.type != CONNACK or len(packet.body) != 2:
        raise CodecError("malformed CONNACK")
    return packet.body[1]


def suback_codes(packet: Packet) -> bytes:
    """Granted QoS per topic filter of a SUBACK; 0x80 means refused."""
    if packet.type != SUBACK or len(packet.body) < 3:
        raise CodecError("malformed SUBACK")
    return packet.body[2:]
