# The canonical contract examples (also read by the firmware tests) agree with the gateway's code.
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from gateway.adapters.mqtt.contract import (
    MAX_DEVICE_TIME,
    MAX_PAYLOAD,
    REASONS,
    RESERVED_DEVICES,
    SOUNDS,
    TRANSIENT_REASONS,
    Malformed,
    ScanMsg,
    Verdict,
    parse_scan,
    split_topic,
    verdict_topic,
)
from gateway.adapters.mqtt.oled import SOUND_FOR, oled_text
from gateway.adapters.mqtt.ota_wire import REQUEST_KIND, ota_topic
from gateway.domain.ota import CHUNK_MAX

EXAMPLES = Path(__file__).resolve().parents[3] / "contract" / "examples"


def test_topics_file_matches_code(contract: Any) -> None:
    t = contract("topics.json")
    assert tuple(t["reasons"]) == REASONS
    assert tuple(t["sounds"]) == SOUNDS
    assert t["max_payload"] == MAX_PAYLOAD
    assert t["verdict"].format(device="d1") == verdict_topic("d1")
    assert split_topic(t["scan"].format(device="gate-7")) == ("gate-7", "scan")
    assert split_topic("hx/v1/dev/bad+id/scan") is None
    assert split_topic("other/topic") is None
    assert set(SOUND_FOR.values()) <= set(SOUNDS)
    assert tuple(t["transient"]) == TRANSIENT_REASONS
    assert tuple(t["reserved_devices"][1:]) == RESERVED_DEVICES
    assert t["max_device_time"] == MAX_DEVICE_TIME
    assert t["ota"].format(device="d1") == ota_topic("d1") and t["ota_chunk"] == CHUNK_MAX
    assert split_topic(t["otareq"].format(device="d1")) == ("d1", REQUEST_KIND)


def test_every_example_is_small_and_versioned() -> None:
    files = sorted(EXAMPLES.glob("*.json"))
    assert len(files) >= 6
    for f in files:
        raw = f.read_bytes()
        assert len(raw) < MAX_PAYLOAD // 2, f.name
        assert json.loads(raw)["v"] == 1, f.name


def test_scan_example_parses() -> None:
    msg = parse_scan((EXAMPLES / "scan.json").read_bytes())
    assert isinstance(msg, ScanMsg)
    assert (msg.sid, msg.code, msg.qty, msg.dir) == ("3-1a", "HXDEMO-VIP-0001", 1, "in")


def test_verdict_examples_round_trip() -> None:
    for f in EXAMPLES.glob("verdict_*.json"):
        doc = json.loads(f.read_text())
        v = Verdict.from_json(f.read_text())
        assert v.to_dict() == doc, f.name
        assert v.reason in REASONS and v.sound in SOUNDS
        assert len(v.l1) <= 16 and len(v.l2) <= 16


def test_invalid_scans_are_malformed_with_the_listed_sid(contract: Any) -> None:
    for case in contract("invalid_scans.json"):
        out = parse_scan(case["payload"].encode())
        assert isinstance(out, Malformed), case["why"]
        assert out.sid == case["sid"], case["why"]
        assert out.why, case["why"]


def test_oversized_and_binary_payloads() -> None:
    big = json.dumps({"v": 1, "sid": "b-1", "code": "X", "qty": 1, "pad": "y" * 2000}).encode()
    out = parse_scan(big)
    assert isinstance(out, Malformed) and out.sid == "b-1" and "over" in out.why
    huge = parse_scan(b"{" + b" " * 20000 + b"}")
    assert isinstance(huge, Malformed) and huge.sid is None
    assert isinstance(parse_scan(b"\xff\xfe\x00"), Malformed)


def test_oled_text_keeps_printable_ascii() -> None:
    assert oled_text("OK  票 VIP\tpass with a long name") == "OK VIP pass with"
    assert len(oled_text("x" * 40)) == 16


def _oled_reference(text: str, width: int = 16) -> str:
    """oled_text as it was written first: the per-character filter for every text."""
    out = "".join(ch if 32 <= ord(ch) < 127 else " " if ch.isspace() else "" for ch in text)
    return " ".join(out.split())[:width].rstrip()


@given(st.text(max_size=40) | st.text(alphabet=st.characters(max_codepoint=160), max_size=40))
def test_oled_text_fast_path_fits_like_the_filter(text: str) -> None:
    assert oled_text(text) == _oled_reference(text)


def test_a_verdict_is_the_same_json_every_time_it_is_asked() -> None:
    v = Verdict("s1", True, "OK", "OK 票", "2 of 3", "redeemed", "ok", 2, {"kind": "ticket"})
    fresh = json.dumps(v.to_dict(), separators=(",", ":"), ensure_ascii=False)
    assert v.to_json() == fresh and v.to_json() == fresh  # the stored text and the published text
    assert v == Verdict.from_json(v.to_json()) and repr(v).count("_json") == 0
