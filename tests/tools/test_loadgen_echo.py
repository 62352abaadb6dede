# The load generator against a real Mosquitto and a stand-in responder: it counts exactly, and it catches faults.
#
# The stand-in gateway is written with paho-mqtt, independently of the load generator's own codec, so the
# tests also check that the codec interoperates with a real MQTT stack. It can drop or duplicate answers on
# purpose, to prove that the load generator's loss and duplicate detection really detects.
from __future__ import annotations

import asyncio
import json
import socket
import threading

import paho.mqtt.client as mqtt
import pytest

from gateway.adapters.brokers.mosquitto import Mosquitto
from tools.loadgen.modes import RunResult, Target, run_open, run_saturate, run_single

pytestmark = pytest.mark.slow  # starts a broker; a few seconds


class EchoResponder:
    """Answers every scan on hx/v1/dev/+/scan with an OK verdict on the device's verdict topic."""

    def __init__(self, host: str, port: int, drop_every: int = 0, duplicate_every: int = 0) -> None:
        self.drop_every = drop_every
        self.duplicate_every = duplicate_every
        self.seen = 0
        self.dropped = 0
        self.duplicated = 0
        self._subscribed = threading.Event()
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="echo-responder", clean_session=True
        )
        self.client.max_inflight_messages_set(1000)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(host, port, keepalive=30)

    def _on_connect(self, client: mqtt.Client, *_: object) -> None:
        sock = client.socket()
        if isinstance(sock, socket.socket):
            # paho leaves Nagle on; without this a second verdict written right after the first waits ~40 ms.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client.subscribe("hx/v1/dev/+/scan", qos=1)

    def _on_message(self, client: mqtt.Client, _userdata: object, msg: mqtt.MQTTMessage) -> None:
        scan = json.loads(msg.payload)
        device = msg.topic.split("/")[3]
        with self._lock:
            self.seen += 1
            n = self.seen
        if self.drop_every and n % self.drop_every == 0:
            self.dropped += 1
            return
        verdict = json.dumps(
            {
                "v": 1,
                "sid": scan["sid"],
                "ok": True,
                "reason": "OK",
                "l1": "OK",
                "l2": "",
                "detail": "",
                "sound": "ok",
                "left": None,
            }
        )
        topic = f"hx/v1/dev/{device}/verdict"
        client.publish(topic, verdict, qos=1)
        if self.duplicate_every and n % self.duplicate_every == 0:
            self.duplicated += 1
            client.publish(topic, verdict, qos=1)

    def __enter__(self) -> EchoResponder:
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("echo responder did not subscribe within 10 s")
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _target(b: Mosquitto) -> Target:
    assert b.proc is not None
    return Target(b.host, b.port, ["LG-A", "LG-B"], {"broker": b.proc.pid})


def _assert_clean(r: RunResult, sent: int | None = None) -> None:
    assert r.sent > 0
    if sent is not None:
        assert r.sent == sent
    assert (r.answered, r.ok, r.lost, r.duplicates, r.strays, r.misrouted, r.bad_verdicts) == (
        r.sent,
        r.sent,
        0,
        0,
        0,
        0,
        0,
    )
    assert r.unacked_publishes == 0  # the broker acknowledged every QoS 1 scan
    assert r.latency is not None and r.latency.n == r.sent
    assert r.reasons == {"OK": r.sent}
    assert r.clean


def test_every_mode_gets_exactly_one_verdict_per_scan(mosquitto: Mosquitto) -> None:
    t = _target(mosquitto)
    with EchoResponder(mosquitto.host, mosquitto.port) as echo:
        single = asyncio.run(run_single(t, scans=50))
        opened = asyncio.run(run_open(t, rate=200, seconds=1, n_devices=5, drain_s=10, seed=1))
        sat = asyncio.run(run_saturate(t, n_devices=10, window=2, seconds=1, warmup=0.2, drain_s=10))
    _assert_clean(single, 50)
    _assert_clean(opened, 200)
    _assert_clean(sat)
    assert sat.sent >= 20  # 10 devices x 2 in flight at least
    assert echo.seen == single.sent + opened.sent + sat.sent
    assert opened.cpu.seconds["broker"] is not None


def test_lost_and_duplicate_verdicts_are_detected_exactly(mosquitto: Mosquitto) -> None:
    t = _target(mosquitto)
    with EchoResponder(mosquitto.host, mosquitto.port, drop_every=7, duplicate_every=5) as echo:
        r = asyncio.run(run_open(t, rate=300, seconds=1, n_devices=4, drain_s=5, seed=2))
    assert r.sent == 300 == echo.seen
    assert echo.dropped == 300 // 7 and r.lost == echo.dropped
    # A scan whose answer was dropped cannot have its duplicate sent, so count what the responder really sent.
    assert r.duplicates == echo.duplicated > 0
    assert len(r.lost_sample) > 0
    assert not r.clean
