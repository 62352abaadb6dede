# The firmware's own MQTT client on the real MicroPython VM against a real Mosquitto (fixture `mosquitto`).
from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator

import paho.mqtt.client as paho
import pytest

from gateway.adapters.brokers.mosquitto import Mosquitto
from tests.firmware.mpvm import MICROPYTHON, MP_DIR, ROOT
from tests.helpers import wait_for

PREFIX = "hx/test/fw"


class Peer:
    """A paho client that records every message it receives (the other side of the broker)."""

    def __init__(self, broker: Mosquitto) -> None:
        self.msgs: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="peer", clean_session=True)
        self.c.on_message = lambda c, u, m: self.msgs.put((m.topic, m.payload, bool(m.retain)))
        self.c.on_connect = lambda c, u, f, rc, p: c.subscribe(PREFIX + "/#", qos=1)
        self.c.connect(broker.host, broker.port)
        self.c.loop_start()

    def expect(self, topic: str, timeout: float = 20) -> tuple[bytes, bool]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                t, p, r = self.msgs.get(timeout=0.2)
            except queue.Empty:
                continue
            if t == topic:
                return p, r
        raise AssertionError(f"no message on {topic} within {timeout} s")

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


@pytest.fixture
def peer(mosquitto: Mosquitto) -> Iterator[Peer]:
    p = Peer(mosquitto)
    try:
        yield p
    finally:
        p.close()


class VM:
    """A MicroPython process running mqtt_peer.py; its stdout lines are collected by a thread."""

    def __init__(self, broker: Mosquitto, scenario: str) -> None:
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [str(MICROPYTHON), str(MP_DIR / "mqtt_peer.py"), broker.host, str(broker.port), scenario, PREFIX],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
            start_new_session=True,
        )
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, prefix: str, timeout: float = 30) -> str:
        def find() -> str | None:
            for ln in self.lines:
                if ln.startswith(prefix):
                    return ln
            if self.proc.poll() is not None and not any(ln.startswith(prefix) for ln in self.lines):
                raise AssertionError(f"VM exited {self.proc.returncode}:\n" + "\n".join(self.lines[-40:]))
            return None

        return wait_for(find, timeout, f"VM line {prefix!r}; output so far {self.lines[-10:]!r}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)


@pytest.fixture
def vms() -> Iterator[list[VM]]:
    started: list[VM] = []
    yield started
    for vm in started:
        vm.kill()


def test_connect_subscribe_publish_round_trip(mosquitto: Mosquitto, peer: Peer, vms: list[VM]) -> None:
    vm = VM(mosquitto, "roundtrip")
    vms.append(vm)
    assert vm.wait_line("SUBACK") == "SUBACK True"
    assert vm.wait_line("PUBACK") == "PUBACK True"
    assert vm.wait_line("RETAINED") == "RETAINED True"
    assert vm.wait_line("DONE") == "DONE 2"
    assert "GOT hx/test/fw/echo hello-qos1" in vm.lines
    assert "GOT hx/test/fw/echo hello-qos0" in vm.lines
    assert peer.expect(PREFIX + "/echo")[0] == b"hello-qos1"
    payload, _ = peer.expect(PREFIX + "/status")
    assert payload == b'{"v": 1, "state": "online"}'
    vm.proc.wait(20)
    assert vm.proc.returncode == 0
    # A clean DISCONNECT must not fire the last will: the retained status stays "online".
    late = Peer(mosquitto)
    try:
        payload, retained = late.expect(PREFIX + "/status")
        assert (payload, retained) == (b'{"v": 1, "state": "online"}', True)
    finally:
        late.close()


def test_last_will_when_vm_is_killed(mosquitto: Mosquitto, peer: Peer, vms: list[VM]) -> None:
    vm = VM(mosquitto, "lwt")
    vms.append(vm)
    assert vm.wait_line("RETAINED") == "RETAINED True"
    assert peer.expect(PREFIX + "/status")[0] == b'{"v": 1, "state": "online"}'
    vm.kill()  # a power cut: no DISCONNECT, the broker must publish the will
    payload, _ = peer.expect(PREFIX + "/status")
    assert payload == b'{"v": 1, "state": "offline"}'
    late = Peer(mosquitto)
    try:
        assert late.expect(PREFIX + "/status") == (b'{"v": 1, "state": "offline"}', True)
    finally:
        late.close()


def test_reconnect_after_broker_restart(mosquitto: Mosquitto, vms: list[VM]) -> None:
    vm = VM(mosquitto, "reconnect")
    vms.append(vm)
    assert vm.wait_line("SUBACK") == "SUBACK True"
    mosquitto.stop()
    vm.wait_line("DOWN")
    time.sleep(1.0)  # the client keeps retrying with back-off while the broker is away
    mosquitto.start()
    assert vm.wait_line("PUBACK-WHILE-DOWN", timeout=60) == "PUBACK-WHILE-DOWN True"
    p = Peer(mosquitto)
    try:
        # Retained, so it is there for a subscriber that connects later: it reached the broker after restart.
        assert p.expect(PREFIX + "/late") == (b"sent-while-down", True)
        # The subscription was renewed on reconnect: a command published now reaches the VM.

        def deliver() -> bool:
            p.c.publish(PREFIX + "/cmd", b"after-restart", qos=1)
            return any(ln == "GOT hx/test/fw/cmd after-restart" for ln in vm.lines)

        wait_for(deliver, 30, "command delivered after reconnect", interval=1.0)
        assert p.expect(PREFIX + "/ack")[0] == b"after-restart"
    finally:
        p.close()
    assert int(vm.wait_line("CONNECTS").split()[1]) >= 2


def test_silent_broker_is_detected_by_keepalive(mosquitto: Mosquitto, vms: list[VM]) -> None:
    assert mosquitto.proc is not None
    vm = VM(mosquitto, "stall")
    vms.append(vm)
    vm.wait_line("UP")
    # SIGSTOP: the TCP connection stays open but nothing answers, like a WiFi link that went away.
    os.kill(mosquitto.proc.pid, signal.SIGSTOP)
    try:
        vm.wait_line("DEAD", timeout=30)
        assert any("keepalive timeout" in ln for ln in vm.lines), vm.lines[-10:]
    finally:
        os.kill(mosquitto.proc.pid, signal.SIGCONT)
    assert int(vm.wait_line("BACK", timeout=60).split()[1]) >= 2
    assert vm.wait_line("PUBACK") == "PUBACK True"
