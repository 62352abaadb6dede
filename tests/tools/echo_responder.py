# A stand-in gateway for load generator tests: answers every scan with an OK verdict over a real broker.
#
# Written with paho-mqtt, independently of the load generator's own codec, so the tests also check that the
# codec interoperates with a real MQTT stack. It can drop or duplicate answers on purpose, to prove that
# the load generator's loss and duplicate detection really detects.
from __future__ import annotations

import json
import socket
import threading

import paho.mqtt.client as mqtt


class EchoResponder:
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
