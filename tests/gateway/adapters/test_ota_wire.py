# The update channel's wire (adapters/mqtt/ota_wire.py): chunk requests read strictly, replies framed.
from __future__ import annotations

import json

import pytest

from gateway.adapters.mqtt.ota_wire import MqttOtaLink, encode_reply, ota_topic, parse_request


def test_a_request_is_read() -> None:
    req = parse_request(b'{"v": 1, "ver": "0.2.0", "f": "hx/app.mpy", "o": 2048, "n": 1024}')
    assert req == {"ver": "0.2.0", "f": "hx/app.mpy", "o": 2048, "n": 1024}
    assert parse_request(b'{"v": 1, "ver": "0.2.0", "f": "", "o": 0, "n": 1024}') is not None


@pytest.mark.parametrize(
    "doc",
    [
        {"v": 2, "ver": "1", "f": "", "o": 0, "n": 1},
        {"v": 1, "ver": "1 2", "f": "", "o": 0, "n": 1},
        {"v": 1, "ver": "1", "f": "../etc/passwd", "o": 0, "n": 1},
        {"v": 1, "ver": "1", "f": "hx/a.mpy", "o": -1, "n": 1},
        {"v": 1, "ver": "1", "f": "hx/a.mpy", "o": 0, "n": 0},
        {"v": 1, "ver": "1", "f": "hx/a.mpy", "o": 0, "n": True},
        {"v": 1, "ver": "1", "f": "hx/a.mpy", "o": 0, "n": 10**6},
    ],
)
def test_anything_else_is_dropped(doc: dict[str, object]) -> None:
    assert parse_request(json.dumps(doc).encode()) is None


def test_garbage_and_oversized_requests_are_dropped() -> None:
    assert parse_request(b"\xff\xfe") is None
    assert parse_request(b"[" * 10000) is None


def test_a_reply_is_a_header_line_then_the_bytes() -> None:
    sent: list[tuple[str, bytes]] = []
    MqttOtaLink(lambda t, p: sent.append((t, p))).send("gate-1", {"ver": "1", "o": 0}, b"\n\x00data")
    assert sent == [(ota_topic("gate-1"), encode_reply({"ver": "1", "o": 0}, b"\n\x00data"))]
    head, _, body = sent[0][1].partition(b"\n")
    assert json.loads(head) == {"ver": "1", "o": 0} and body == b"\n\x00data"
    assert ota_topic("gate-1") == "hx/v1/dev/gate-1/ota"
