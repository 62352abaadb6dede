# Unit tests of the load generator's pure parts: the MQTT 3.1.1 codec, percentiles and the scan/verdict tally.
from __future__ import annotations

import json
import os
import struct
import time
from pathlib import Path

import pytest

from tools.loadgen import codec
from tools.loadgen.client import scan_payload
from tools.loadgen.profile import render, summarise
from tools.loadgen.stats import (
    CpuSnapshot,
    CpuUse,
    Latency,
    Tally,
    cpu_snapshot,
    durable_commit_latency,
    machine_busy_seconds,
    percentile,
    process_cpu_seconds,
)


@pytest.mark.parametrize(
    ("n", "encoded"),
    [
        (0, b"\x00"),
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (16_383, b"\xff\x7f"),
        (16_384, b"\x80\x80\x01"),
        (2_097_151, b"\xff\xff\x7f"),
        (2_097_152, b"\x80\x80\x80\x01"),
        (268_435_455, b"\xff\xff\xff\x7f"),
    ],
)
def test_remaining_length_matches_the_spec_table(n: int, encoded: bytes) -> None:
    # The boundary values are the ones listed in MQTT 3.1.1 section 2.2.3.
    assert codec.encode_remaining_length(n) == encoded


def test_remaining_length_out_of_range() -> None:
    with pytest.raises(codec.CodecError):
        codec.encode_remaining_length(268_435_456)
    with pytest.raises(codec.CodecError):
        codec.encode_remaining_length(-1)


def test_connect_bytes() -> None:
    pkt = codec.encode_connect("dev-1", keepalive=30)
    # fixed header, protocol name "MQTT", level 4, clean-session flag, keepalive 30, client id
    body = b"\x00\x04MQTT\x04\x02\x00\x1e\x00\x05dev-1"
    assert pkt == bytes([0x10, len(body)]) + body


def test_subscribe_bytes_carry_required_flags() -> None:
    pkt = codec.encode_subscribe(7, "hx/v1/dev/d/verdict", qos=1)
    assert pkt[0] == 0x82  # SUBSCRIBE with the reserved flags 0b0010
    assert pkt[2:4] == b"\x00\x07"
    assert pkt.endswith(b"hx/v1/dev/d/verdict\x01")


def test_publish_round_trip_through_the_decoder() -> None:
    payload = scan_payload("3-1a", "HXDEMO-VIP-0001", at=1795392000)
    raw = codec.encode_publish("hx/v1/dev/d1/scan", payload, qos=1, packet_id=513)
    [pkt] = codec.Decoder().feed(raw)
    pub = codec.decode_publish(pkt)
    assert (pub.topic, pub.qos, pub.packet_id, pub.payload, pub.dup, pub.retain) == (
        "hx/v1/dev/d1/scan",
        1,
        513,
        payload,
        False,
        False,
    )


def test_qos0_publish_has_no_packet_id() -> None:
    raw = codec.encode_publish("t", b"x", qos=0, retain=True)
    assert raw == b"\x31\x04\x00\x01tx"
    pub = codec.decode_publish(codec.Decoder().feed(raw)[0])
    assert pub.packet_id == 0 and pub.retain and pub.payload == b"x"


def test_decoder_reassembles_packets_split_at_every_byte() -> None:
    stream = (
        codec.encode_publish("hx/v1/dev/a/verdict", b"y" * 300, qos=1, packet_id=1)  # two length bytes
        + codec.encode_puback(2)
        + bytes([0x20, 2, 0, 0])  # CONNACK accepted
        + bytes([0xD0, 0])  # PINGRESP, empty body
    )
    dec = codec.Decoder()
    got: list[codec.Packet] = []
    for i in range(len(stream)):
        got += dec.feed(stream[i : i + 1])
    assert [p.type for p in got] == [codec.PUBLISH, codec.PUBACK, codec.CONNACK, codec.PINGRESP]
    assert codec.decode_publish(got[0]).payload == b"y" * 300
    assert codec.packet_id_of(got[1]) == 2
    assert codec.connack_code(got[2]) == 0
    assert dec.pending == 0


def test_decoder_returns_all_packets_of_one_read_and_keeps_the_tail() -> None:
    one = codec.encode_puback(9)
    dec = codec.Decoder()
    got = dec.feed(one * 3 + one[:3])
    assert [codec.packet_id_of(p) for p in got] == [9, 9, 9]
    assert dec.pending == 3
    assert [codec.packet_id_of(p) for p in dec.feed(one[3:])] == [9]


def test_decoder_rejects_a_five_byte_length() -> None:
    with pytest.raises(codec.CodecError):
        codec.Decoder().feed(b"\x30\xff\xff\xff\xff\x01")


def test_suback_and_puback_helpers() -> None:
    suback = codec.Decoder().feed(b"\x90\x03\x00\x05\x01")[0]
    assert codec.packet_id_of(suback) == 5
    assert codec.suback_codes(suback) == b"\x01"
    assert codec.encode_puback(0x1234) == b"\x40\x02\x12\x34"
    assert codec.PINGREQ_BYTES == b"\xc0\x00"


@pytest.mark.parametrize("bad", [0, 65536])
def test_packet_id_range(bad: int) -> None:
    with pytest.raises(codec.CodecError):
        codec.encode_puback(bad)


def test_decode_publish_rejects_truncated_body() -> None:
    pkt = codec.Packet(codec.PUBLISH, 0x02, struct.pack("!H", 10) + b"abc")
    with pytest.raises(codec.CodecError):
        codec.decode_publish(pkt)


def test_scan_payload_follows_the_contract_example() -> None:
    example = json.loads((Path(__file__).parents[2] / "contract/examples/scan.json").read_text())
    mine = json.loads(
        scan_payload(example["sid"], example["code"], example["qty"], example["dir"], example["at"])
    )
    assert mine == example


def test_nearest_rank_percentile() -> None:
    values = [float(i) for i in range(1, 101)]  # 1..100
    assert percentile(values, 50) == 50.0
    assert percentile(values, 90) == 90.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile(values, 0) == 1.0
    assert percentile([5.0], 99) == 5.0
    # ceil(0.5 * 3) = 2nd value; ceil(0.99 * 3) = 3rd
    assert percentile([1.0, 2.0, 3.0], 50) == 2.0
    assert percentile([1.0, 2.0, 3.0], 99) == 3.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_latency_summary_in_ms() -> None:
    lat = Latency.of([0.004, 0.001, 0.003, 0.002])
    assert lat is not None
    assert (lat.n, lat.p50, lat.max) == (4, 2.0, 4.0)
    assert lat.mean == pytest.approx(2.5)
    assert Latency.of([]) is None


def test_tally_counts_lost_duplicate_stray_and_misrouted() -> None:
    t = Tally()
    t.on_sent("a", "d1", 1.0)
    t.on_sent("b", "d1", 1.0)
    t.on_sent("c", "d2", 1.0)
    assert t.on_verdict("a", "d1", True, "OK", 1.002)
    assert not t.on_verdict("a", "d1", True, "OK", 1.003)  # duplicate
    assert not t.on_verdict("zz", "d1", True, "OK", 1.004)  # never sent
    assert t.on_verdict("c", "d1", False, "ALREADY_USED", 1.005)  # answered on d1's topic, sent by d2
    assert (t.lost, t.duplicates, t.strays, t.misrouted, t.ok) == (1, 1, 1, 1, 1)
    assert t.lost_sids() == ["b"]
    assert t.reasons == {"OK": 1, "ALREADY_USED": 1}
    assert t.latencies == pytest.approx([0.002, 0.005])
    assert t.completed_between(1.0, 1.003) == 1
    with pytest.raises(ValueError):
        t.on_sent("a", "d1", 2.0)


def test_cpu_of_this_process_is_read_from_proc_and_a_gone_process_is_none() -> None:
    before = process_cpu_seconds(os.getpid())
    t = time.process_time()
    while time.process_time() - t < 0.1:  # burn some CPU so the tick counter must move
        pass
    after = process_cpu_seconds(os.getpid())
    assert before is not None and after is not None and after > before
    assert process_cpu_seconds(2**22 + 12345) is None


def test_cpu_use_between_snapshots_and_other_load() -> None:
    a = CpuSnapshot(wall=10.0, generator=1.0, others={"gateway": 5.0, "broker": None, "machine": 100.0})
    b = CpuSnapshot(wall=12.0, generator=1.5, others={"gateway": 6.0, "broker": 2.0, "machine": 103.0})
    use = CpuUse.between(a, b)
    assert use.seconds == {"generator": 0.5, "gateway": 1.0, "broker": None, "machine": 3.0}
    assert use.cores("gateway") == pytest.approx(0.5)
    assert use.per_scan_us("generator", 1000) == pytest.approx(500.0)
    assert use.cores("broker") is None
    # 3 busy CPU-seconds on the machine, 1.5 of them ours, over 2 s: 0.75 cores of somebody else's work.
    assert use.other_load() == pytest.approx(0.75)
    assert machine_busy_seconds() is not None


def test_cpu_of_a_process_group_is_summed_over_its_members_as_they_come_and_go() -> None:
    # Two workers (pids 1, 2) and a backend (3) that started during the run: all its CPU is the run's.
    a = CpuSnapshot(wall=0.0, generator=0.0, others={}, groups={"gateway": {1: 10.0, 2: 20.0}, "pg": {}})
    b = CpuSnapshot(
        wall=2.0, generator=0.0, others={}, groups={"gateway": {1: 11.0, 2: 20.5, 3: 0.25}, "pg": {}}
    )
    use = CpuUse.between(a, b)
    assert use.seconds["gateway"] == pytest.approx(1.75)
    assert use.cores("gateway") == pytest.approx(0.875)
    assert use.seconds["pg"] is None  # no member could be read: not measured, rather than 0
    me = os.getpid()
    snap = cpu_snapshot({}, {"self": lambda: [me, 2**22 + 12345]})
    assert list(snap.groups["self"]) == [me]  # a member that is gone is left out


def test_profile_summary_counts_working_samples_per_thread() -> None:
    raw = "\n".join(
        [
            "thread (11): svc;_run (/x/gateway/services/redeem.py:10);apply (/x/gateway/services/ledger.py:5) 6",
            "thread (11): svc;_run (/x/gateway/services/redeem.py:10);Queue.get (/usr/lib/python3.11/queue.py:171) 50",
            "thread (12): paho;_loop (/v/site-packages/paho/mqtt/client.py:1690) 2",
            "garbage line",
        ]
    )
    s = summarise(raw)
    assert (s.samples, s.busy) == (58, 8)  # the 50 samples waiting in Queue.get are not work
    assert s.threads == {"svc": 6, "paho": 2}
    assert ("apply (gateway/services/ledger.py)", 6) in s.inclusive["svc"]
    assert s.leaves["paho"] == [("_loop (paho/mqtt/client.py)", 2)]
    assert "thread svc: 75%" in render(s)


def test_durable_commit_probe_times_each_commit(tmp_path: Path) -> None:
    lat = durable_commit_latency(str(tmp_path), commits=5)
    assert lat is not None and lat.n == 5 and 0 < lat.p50 <= lat.max
    assert list(tmp_path.iterdir()) == []  # leaves nothing behind
