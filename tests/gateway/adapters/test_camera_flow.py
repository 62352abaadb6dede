"""Camera frames through a real Mosquitto to a real gateway: a shown code redeems once, no code gets a hint."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from gateway.adapters.brokers.mosquitto import Mosquitto
from tests.conftest import GatewayProc
from tests.gateway.adapters.test_mqtt_flow import make_order
from tests.gateway.mqtt_peer import Peer
from tests.helpers import wait_for
from tools.camera.synth import Scene, jpeg, render


class CameraPeer(Peer):
    """A camera board's MQTT side: frames out, verdicts and hints in (kept apart)."""

    def __init__(self, url: str, device: str) -> None:
        self.hints: list[dict[str, Any]] = []
        super().__init__(url, device)
        self.c.subscribe(self.topic("hint"), qos=0)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        if msg.topic.endswith("/hint"):
            with self.lock:
                self.hints.append(json.loads(msg.payload))
            return
        super()._on_message(client, userdata, msg)

    def frame(self, sid: str, n: int, image: bytes, fmt: str = "jpeg", w: int = 320, h: int = 240) -> None:
        head = {"v": 1, "sid": sid, "n": n, "fmt": fmt, "w": w, "h": h, "dir": "in", "at": 1795392000}
        self.c.publish(self.topic("frame"), json.dumps(head).encode() + b"\n" + image, qos=0)


def test_a_shown_code_redeems_once_and_a_frame_without_one_gets_a_hint(
    gateway: GatewayProc, mosquitto: Mosquitto
) -> None:
    make_order(gateway, "HXO-CAM-E2E")
    cam = CameraPeer(mosquitto.url, "cam-7")
    try:
        shot = jpeg(render(Scene(text="HXO-CAM-E2E", width=640, height=480, ppm=6, tilt=20)), 30)
        for n in range(3):  # a burst: every frame carries the attempt's sid
            cam.frame("a1-1-1", n, shot)
        v = cam.wait_verdict("a1-1-1")
        assert (v["ok"], v["reason"]) == (True, "OK")
        # The next showing is a new attempt: the same path answers ALREADY_USED (raw gray this time).
        gray = render(Scene(text="HXO-CAM-E2E", ppm=4, seed=3))
        cam.frame("a1-1-2", 0, gray.tobytes(), fmt="gray")
        assert cam.wait_verdict("a1-1-2")["reason"] == "ALREADY_USED"
        cam.frame("a1-1-3", 0, jpeg(render(Scene(text="")), 30))
        hint = wait_for(lambda: [h for h in cam.hints if h["sid"] == "a1-1-3"], 30, "a hint")[0]
        assert hint["hint"] == "none" and hint["l1"] == "SHOW THE CODE"
        time.sleep(0.5)
        assert cam.verdicts_for("a1-1-3") == []
        assert len(cam.verdicts_for("a1-1-1")) >= 1
    finally:
        cam.close()
    order = gateway.api("GET", "/api/orders/HXO-CAM-E2E").json()
    assert order["used"] == 1
    health = gateway.api("GET", "/api/health").json()["camera"]
    assert health["decoded"] >= 2 and health["hints"] == 1 and health["kept_for_debug"] == 0


def test_the_broker_bounds_packets_and_devices_speak_only_their_own_camera_topics(
    mosquitto: Mosquitto,
) -> None:
    from gateway.adapters.mqtt.acl import render_acl
    from gateway.adapters.mqtt.contract import MAX_FRAME

    conf = mosquitto.conf_path.read_text()
    assert f"max_packet_size {MAX_FRAME + 1024}" in conf
    acl = render_acl("gw")
    assert "pattern write hx/v1/dev/%u/frame" in acl and "pattern read hx/v1/dev/%u/hint" in acl


def test_a_packet_over_the_limit_never_reaches_the_gateway(
    gateway: GatewayProc, mosquitto: Mosquitto
) -> None:
    from gateway.adapters.mqtt.contract import MAX_FRAME

    cam = CameraPeer(mosquitto.url, "cam-8")
    try:
        cam.frame("big-1", 0, b"\0" * (MAX_FRAME + 2048), fmt="gray", w=1600, h=1)
        time.sleep(1.0)
    finally:
        cam.close()
    assert gateway.api("GET", "/api/health").json()["camera"]["frames"] == 0


def test_the_contract_file_names_the_camera_topics_limits_and_hints(contract: Any) -> None:
    from gateway.adapters.camera.decode import HINTS
    from gateway.adapters.camera.frame import HINT_LINES, MAX_HEADER
    from gateway.adapters.mqtt.contract import MAX_FRAME, frame_topic, hint_topic

    t = contract("topics.json")
    assert t["frame"].format(device="d1") == frame_topic("d1")
    assert t["hint"].format(device="d1") == hint_topic("d1")
    assert (t["qos"]["frame"], t["qos"]["hint"]) == (0, 0)
    assert (t["max_frame"], t["max_frame_header"]) == (MAX_FRAME, MAX_HEADER)
    assert tuple(t["hints"]) == HINTS == tuple(HINT_LINES)
    assert all(len(a) <= 16 and len(b) <= 16 for a, b in HINT_LINES.values())


def test_the_contract_examples_are_what_both_sides_speak() -> None:
    from gateway.adapters.camera.frame import hint_payload, parse_frame

    examples = Path(__file__).resolve().parents[3] / "contract" / "examples"
    head = (examples / "frame_header.json").read_bytes().strip()
    f = parse_frame(head + b"\n" + b"\xff\xd8")
    assert (f.sid, f.n, f.fmt, f.width, f.height, f.qty, f.dir) == (
        "k3Xq9Z-1a-4",
        2,
        "jpeg",
        640,
        480,
        1,
        "in",
    )
    assert json.loads(hint_payload(f, "closer")) == json.loads((examples / "hint.json").read_text())
