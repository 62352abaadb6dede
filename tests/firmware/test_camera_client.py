# The firmware's MQTT client streams a camera frame from its buffer (real VM, real Mosquitto, small heap).
from __future__ import annotations

import queue
import subprocess

import paho.mqtt.client as paho

from gateway.adapters.brokers.mosquitto import Mosquitto
from tests.firmware.mpvm import MICROPYTHON, MP_DIR, ROOT

TOPIC = "hx/v1/dev/cam-1/frame"
HEAP = "280K"  # room for the 150 KB frame once (beside the firmware the VM helper imports), not twice


def _expected() -> bytes:
    body = bytearray(150000)
    for i in range(0, len(body), 997):
        body[i] = i % 251
    return b'{"v":1,"sid":"f-1","fmt":"gray","w":500,"h":300}\n' + bytes(body)


def _run(broker: Mosquitto, how: str) -> tuple[str, list[bytes]]:
    got: queue.Queue[bytes] = queue.Queue()
    peer = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"peer-{how}")
    peer.on_message = lambda c, u, m: got.put(m.payload)
    peer.on_connect = lambda c, u, f, rc, p: c.subscribe(TOPIC, qos=0)
    peer.connect(broker.host, broker.port)
    peer.loop_start()
    try:
        out = subprocess.run(
            [
                str(MICROPYTHON),
                "-X",
                f"heapsize={HEAP}",
                str(MP_DIR / "frame_peer.py"),
                broker.host,
                str(broker.port),
                TOPIC,
                how,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        frames = []
        try:
            frames.append(got.get(timeout=5))
        except queue.Empty:
            pass
    finally:
        peer.loop_stop()
        peer.disconnect()
    return out.stdout + out.stderr, frames


def test_a_frame_is_streamed_from_its_buffer_without_a_second_copy(mosquitto: Mosquitto) -> None:
    out, frames = _run(mosquitto, "stream")
    assert "SENT True" in out, out[-2000:]
    assert frames == [_expected()]


def test_joining_the_same_frame_into_one_packet_does_not_fit_that_heap(mosquitto: Mosquitto) -> None:
    out, frames = _run(mosquitto, "join")  # the control: proves the heap above is tight enough to tell
    assert "SENT MemoryError" in out, out[-2000:]
    assert frames == []
