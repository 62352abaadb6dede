"""The frame decoder's worker: one code enters the scan path, no code gets a hint, bounds and debug keep."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from gateway.adapters.camera.frame import BadHeader, parse_frame
from gateway.adapters.camera.worker import PER_DEVICE, RESEND_S, FrameDecoder
from gateway.adapters.mqtt.contract import MAX_FRAME
from gateway.adapters.mqtt.inbound import ScanIn, read
from tools.camera.synth import Scene, jpeg, render

TOPIC = "hx/v1/dev/cam-1/frame"


def frame(sid: str, image: bytes, fmt: str = "jpeg", n: int = 0, **extra: object) -> bytes:
    head = {
        "v": 1,
        "sid": sid,
        "n": n,
        "fmt": fmt,
        "w": 320,
        "h": 240,
        "dir": "in",
        "at": 1795392000,
        **extra,
    }
    return json.dumps(head).encode() + b"\n" + image


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Rig:
    def __init__(self, **kw: object) -> None:
        self.scans: list[tuple[str, bytes]] = []
        self.hints: list[tuple[str, dict[str, object]]] = []
        self.clock = Clock()
        self.fd = FrameDecoder(
            lambda t, p: self.scans.append((t, p)),
            lambda t, p: self.hints.append((t, json.loads(p))),
            monotonic=self.clock,
            **kw,  # type: ignore[arg-type]
        )


CODE_JPEG = jpeg(render(Scene(text="HXO-CAM-1")), 40)
EMPTY_JPEG = jpeg(render(Scene(text="")), 40)


def test_one_code_becomes_the_scan_a_uart_board_would_send_under_the_frames_sid() -> None:
    rig = Rig()
    assert rig.fd.handle("cam-1", frame("k3Xq9Z-1-4", CODE_JPEG, qty=2)) == "decoded"
    [(topic, payload)] = rig.scans
    msg = read(topic, payload)  # the redemption service's own reading of a scan
    assert isinstance(msg, ScanIn)
    r = msg.request
    assert (r.device, r.sid, r.code, r.qty, r.direction) == ("cam-1", "k3Xq9Z-1-4", "HXO-CAM-1", 2, "in")
    assert rig.hints == []


def test_gray_frames_are_read_too() -> None:
    rig = Rig()
    g = render(Scene(text="HXO-GRAY"))
    assert rig.fd.handle("cam-1", frame("s-1", g.tobytes(), fmt="gray")) == "decoded"
    assert json.loads(rig.scans[0][1])["code"] == "HXO-GRAY"


def test_no_code_answers_a_hint_and_never_a_scan() -> None:
    rig = Rig()
    assert rig.fd.handle("cam-1", frame("s-2", EMPTY_JPEG, n=3)) == "hint:none"
    assert rig.scans == []
    [(topic, doc)] = rig.hints
    assert topic == "hx/v1/dev/cam-1/hint"
    assert doc == {"v": 1, "sid": "s-2", "n": 3, "hint": "none", "l1": "SHOW THE CODE", "l2": "to the camera"}
    assert all(len(str(doc[k])) <= 16 for k in ("l1", "l2"))


def test_two_codes_in_one_frame_are_not_redeemed() -> None:
    rig = Rig()
    two = np.hstack([render(Scene(text="A-1", ppm=4, seed=1)), render(Scene(text="B-2", ppm=4, seed=2))])
    payload = (
        json.dumps({"v": 1, "sid": "s-3", "fmt": "gray", "w": 640, "h": 240}).encode() + b"\n" + two.tobytes()
    )
    assert rig.fd.handle("cam-1", payload) == "hint:one"
    assert rig.scans == []
    assert rig.fd.counters.several == 1


def test_later_frames_of_a_decoded_attempt_are_not_decoded_again_and_resend_its_scan_slowly() -> None:
    rig = Rig()
    rig.fd.handle("cam-1", frame("s-4", CODE_JPEG))
    # A later frame of the same attempt showing something else can never become a second request.
    assert rig.fd.handle("cam-1", frame("s-4", jpeg(render(Scene(text="OTHER")), 40), n=1)) == "after"
    assert len(rig.scans) == 1
    rig.clock.t += RESEND_S
    assert rig.fd.handle("cam-1", frame("s-4", EMPTY_JPEG, n=2)) == "after"
    assert [json.loads(p)["code"] for _, p in rig.scans] == ["HXO-CAM-1", "HXO-CAM-1"]
    assert rig.hints == []


@pytest.mark.parametrize(
    "payload",
    [
        b"no header line",
        b'{"v":2,"sid":"a","fmt":"jpeg"}\n',
        b'{"v":1,"sid":"bad sid","fmt":"jpeg"}\n',
        b'{"v":1,"sid":"a","fmt":"png"}\n',
        b'{"v":1,"sid":"a","fmt":"gray","w":0,"h":10}\n',
        b'{"v":1,"sid":"a","fmt":"jpeg","qty":0}\n',
        b'{"v":1,"sid":"a","fmt":"jpeg","at":NaN}\n',
        b'{"v":1,"sid":"a","fmt":"jpeg"}\n' + b"\0" * MAX_FRAME,
    ],
)
def test_bad_headers_are_refused(payload: bytes) -> None:
    with pytest.raises(BadHeader):
        parse_frame(payload)
    rig = Rig()
    assert rig.fd.handle("cam-1", payload) == "bad"
    assert (rig.scans, rig.hints, rig.fd.counters.bad) == ([], [], 1)


def test_an_unreadable_image_is_dropped_and_counted() -> None:
    rig = Rig()
    assert rig.fd.handle("cam-1", frame("s-5", b"\xff\xd8 broken")) == "bad"
    assert rig.fd.handle("cam-1", frame("s-6", b"\0" * 100, fmt="gray")) == "bad"
    assert rig.fd.counters.bad == 2


def test_a_device_keeps_only_its_newest_frames_waiting() -> None:
    rig = Rig()
    for i in range(5):
        rig.fd.submit(TOPIC, frame("s-7", EMPTY_JPEG, n=i))
    rig.fd.submit("hx/v1/dev/cam-2/frame", frame("s-8", EMPTY_JPEG))
    h = rig.fd.health()
    assert (h["frames"], h["waiting"], h["dropped_old"]) == (6, PER_DEVICE + 1, 5 - PER_DEVICE)
    assert rig.fd.counters.per_device_dropped == {"cam-1": 5 - PER_DEVICE}
    rig.fd.start()
    try:
        from tests.helpers import wait_for

        wait_for(lambda: len(rig.hints) == PER_DEVICE + 1, 20, "every waiting frame answered")
    finally:
        rig.fd.stop()
    # The newest frames were the ones decoded (n 3 and 4), in order.
    assert [d["n"] for t, d in rig.hints if t.endswith("cam-1/hint")] == [3, 4]


def test_decoding_runs_on_the_decoder_thread_not_the_callers() -> None:
    seen: list[str] = []
    fd = FrameDecoder(lambda t, p: seen.append(threading.current_thread().name), lambda t, p: None)
    fd.start()
    try:
        fd.submit(TOPIC, frame("s-9", CODE_JPEG))
        from tests.helpers import wait_for

        wait_for(lambda: seen, 20, "a decoded scan")
    finally:
        fd.stop()
    assert seen == ["camera-decoder-0"]


def test_unread_frames_are_kept_only_for_devices_in_debug_and_only_for_a_while() -> None:
    rig = Rig(debug=frozenset({"cam-1"}), debug_keep=2, debug_s=60.0)
    for i in range(3):
        rig.fd.handle("cam-1", frame(f"d-{i}", EMPTY_JPEG))
        rig.fd.handle("cam-2", frame(f"d-{i}", EMPTY_JPEG))
    rig.fd.handle("cam-1", frame("d-ok", CODE_JPEG))  # a read frame is never kept
    kept = rig.fd.failures("cam-1")
    assert [parse_frame(p).sid for _, p in kept] == ["d-1", "d-2"]
    assert rig.fd.failures("cam-2") == []
    rig.clock.t += 61
    assert rig.fd.failures("cam-1") == []
    assert rig.fd.health()["kept_for_debug"] == 0


def test_every_decode_is_timed_and_an_unreadable_frame_is_not() -> None:
    rig = Rig()
    assert rig.fd.handle("cam-1", frame("t-1", CODE_JPEG)) == "decoded"
    assert rig.fd.handle("cam-1", frame("t-2", EMPTY_JPEG)) == "hint:none"
    assert rig.fd.handle("cam-1", frame("t-3", b"not a jpeg")) == "bad"
    h = rig.fd.counters.decode_s
    assert h.n == 2 and h.total > 0
    assert h.cumulative()[-1] == ("+Inf", 2)
