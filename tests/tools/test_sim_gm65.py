# Tests of the virtual GM65/GM861 scanner module: frame codec, zone table and behaviour (pure, no I/O).
from __future__ import annotations

import pytest

from tools.sim import gm65
from tools.sim.gm65 import (
    ACK,
    CommandParser,
    FrameType,
    Mode,
    ReplyParser,
    VirtualModule,
    Zone,
    crc16_xmodem,
    encode_command,
    encode_reply,
)

# Constants from the module documentation (see /work/shared/notes/scanner-modules.md).
SAVE = bytes.fromhex("7E 00 09 01 00 00 00 DE C8")
FACTORY_RESET = bytes.fromhex("7E 00 09 01 00 00 02 FE 8A")
QUERY_BAUD = bytes.fromhex("7E 00 07 01 00 2A 02 D8 0F")
SET_9600 = bytes.fromhex("7E 00 08 02 00 2A 39 01 A7 EA")
TRIGGER_NO_CRC = bytes.fromhex("7E 00 08 01 00 02 01 AB CD")


def test_crc_matches_documented_frames() -> None:
    assert crc16_xmodem(b"123456789") == 0x31C3  # the CRC-16/XMODEM check value
    for frame in (SAVE, FACTORY_RESET, QUERY_BAUD, SET_9600):
        assert crc16_xmodem(frame[2:-2]).to_bytes(2, "big") == frame[-2:]


def test_encode_command_reproduces_documented_frames() -> None:
    assert encode_command(FrameType.SAVE, 0x0000, b"\x00") == SAVE
    assert encode_command(FrameType.READ, Zone.BAUD, b"\x02") == QUERY_BAUD
    assert encode_command(FrameType.WRITE, Zone.BAUD, b"\x39\x01") == SET_9600
    assert encode_command(FrameType.WRITE, Zone.TRIGGER, b"\x01", check=False) == TRIGGER_NO_CRC
    with pytest.raises(ValueError):
        encode_command(FrameType.WRITE, 0, b"")


def test_write_ack_is_the_documented_reply() -> None:
    assert bytes.fromhex("02 00 00 01 00 33 31") == ACK
    assert encode_reply(0, b"\x00") == ACK


def test_baud_zone_encoding() -> None:
    assert gm65.baud_to_zone(9600) == b"\x39\x01"
    assert gm65.baud_to_zone(115200) == b"\x1a\x00"
    assert gm65.zone_to_baud(b"\x39\x01") == 9600
    assert gm65.zone_to_baud(b"\x1a\x00") == 115200


def test_parser_handles_split_frames_junk_and_bad_crc() -> None:
    parser = CommandParser()
    stream = b"\xff\x00junk" + SET_9600 + b"\x7e" + QUERY_BAUD[:-1]
    first = parser.feed(stream[:7]) + parser.feed(stream[7:])
    assert [(c.type, c.addr, c.data, c.crc_ok) for c in first] == [(0x08, 0x002A, b"\x39\x01", True)]
    rest = parser.feed(QUERY_BAUD[-1:])
    assert [(c.type, c.addr, c.data) for c in rest] == [(0x07, 0x002A, b"\x02")]
    assert parser.skipped == 7  # 6 junk bytes + the stray 0x7E before the second frame

    corrupted = bytearray(SAVE)
    corrupted[-1] ^= 0xFF
    (bad,) = parser.feed(bytes(corrupted))
    assert not bad.crc_ok
    (skipped,) = parser.feed(TRIGGER_NO_CRC)
    assert skipped.crc_ok and skipped.crc_skipped


def test_parser_resynchronises_after_absurd_length() -> None:
    parser = CommandParser()
    cmds = parser.feed(b"\x7e\x00\x08\xff" + SAVE)
    assert [c.type for c in cmds] == [FrameType.SAVE]


def test_read_version_and_baud() -> None:
    module = VirtualModule(version=0x69)
    replies = ReplyParser().feed(module.receive(encode_command(FrameType.READ, Zone.VERSION, b"\x01")))
    assert [(r.status, r.data) for r in replies] == [(0, b"\x69")]
    replies = ReplyParser().feed(module.receive(QUERY_BAUD))
    assert [(r.status, r.data) for r in replies] == [(0, b"\x39\x01")]


def test_writes_change_behaviour_and_version_is_read_only() -> None:
    module = VirtualModule()
    assert module.tail == b"\r\n"
    assert module.receive(encode_command(FrameType.WRITE, Zone.TAIL, bytes([0b11 << 5]))) == ACK
    assert module.tail == b""
    assert module.present("ABC", now=0) == b"ABC"
    module.receive(encode_command(FrameType.WRITE, Zone.TAIL, bytes([0b10 << 5])))
    assert module.present("ABC", now=0) == b"ABC\t"
    module.receive(encode_command(FrameType.WRITE, Zone.VERSION, b"\x01"))
    assert module.zones[Zone.VERSION] == 0x87
    module.receive(encode_command(FrameType.WRITE, Zone.BAUD, gm65.baud_to_zone(115200)))
    assert module.baud == 115200
    assert module.writes == 4


def test_bad_crc_and_unknown_type_get_no_answer() -> None:
    module = VirtualModule()
    corrupted = bytearray(SET_9600)
    corrupted[-2] ^= 0x01
    assert module.receive(bytes(corrupted)) == b""
    assert module.receive(encode_command(0x42, 0, b"\x00")) == b""
    assert module.ignored == 2
    assert module.writes == 0


def test_out_of_range_read_is_an_error_reply() -> None:
    module = VirtualModule()
    (reply,) = ReplyParser().feed(module.receive(encode_command(FrameType.READ, 0x00FF, b"\x05")))
    assert not reply.ok


def test_save_survives_power_cycle_and_unsaved_writes_do_not() -> None:
    module = VirtualModule()
    module.receive(encode_command(FrameType.WRITE, Zone.TAIL, bytes([0b00 << 5])))
    module.power_cycle()
    assert module.tail == b"\r\n"
    module.receive(encode_command(FrameType.WRITE, Zone.TAIL, bytes([0b00 << 5])))
    assert module.receive(SAVE) == ACK
    module.power_cycle()
    assert module.tail == b"\r"
    assert module.receive(FACTORY_RESET) == ACK
    assert module.tail == b"\r\n"


def test_command_trigger_mode_holds_the_code_until_triggered() -> None:
    module = VirtualModule()
    settings = (module.zones[Zone.SETTINGS] & ~0b11) | Mode.COMMAND
    module.receive(encode_command(FrameType.WRITE, Zone.SETTINGS, bytes([settings])))
    assert module.mode is Mode.COMMAND
    assert module.present("HX-1", now=0) == b""
    out = module.receive(TRIGGER_NO_CRC, now=1)
    assert out == ACK + b"HX-1\r\n"
    assert module.zones[Zone.TRIGGER] & 1 == 0  # self-clearing
    assert module.receive(TRIGGER_NO_CRC, now=2) == ACK  # nothing left in view


def test_same_code_delay() -> None:
    module = VirtualModule()
    module.receive(encode_command(FrameType.WRITE, Zone.SAME_CODE_DELAY, b"\x85"))
    assert module.same_code_delay_s == 5.0
    assert module.present("A", now=100.0) == b"A\r\n"
    assert module.present("A", now=102.0) == b""
    assert module.present("B", now=102.5) == b"B\r\n"
    assert module.present("B", now=108.0) == b"B\r\n"


def test_non_serial_interface_emits_nothing() -> None:
    module = VirtualModule()
    module.receive(encode_command(FrameType.WRITE, Zone.INTERFACE, b"\x01"))
    assert module.present("A", now=0) == b""


def test_heartbeat_is_acknowledged() -> None:
    assert VirtualModule().receive(encode_command(FrameType.HEARTBEAT, 0, b"\x00")) == ACK


def test_reply_parser_skips_corrupted_replies() -> None:
    good = encode_reply(0, b"\x12\x34")
    bad = bytearray(good)
    bad[-1] ^= 0xFF
    replies = ReplyParser().feed(b"noise" + bytes(bad) + good)
    assert [(r.status, r.data) for r in replies] == [(0, b"\x12\x34")]


def test_blocked_for_reports_the_same_code_delay_left() -> None:
    module = VirtualModule()
    module.receive(encode_command(FrameType.WRITE, Zone.SAME_CODE_DELAY, b"\x83"))
    module.present("A", now=10.0)
    assert module.blocked_for("A", now=11.0) == 2.0
    assert module.blocked_for("B", now=11.0) == 0.0
    assert module.blocked_for("A", now=14.0) == 0.0
