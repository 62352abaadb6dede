# The whole firmware (unix board) on the real VM with a real Mosquitto and a scripted gateway peer:
# scan -> verdict -> screen/sound/relay, garbage on the UART, offline queueing, power cut and reboot.
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import time
import tty
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest

from gateway.adapters.brokers.mosquitto import Mosquitto
from tests.firmware.mpvm import FIRMWARE, MICROPYTHON
from tests.helpers import wait_for

DEV = "fw-host-1"


class FakeGateway:
    """Answers every scan like the gateway would (by sid, idempotently): GOOD-* is OK once, then used."""

    def __init__(self, broker: Mosquitto, login: tuple[str, str] | None = None) -> None:
        self.scans: list[dict[str, Any]] = []
        self.status: queue.Queue[tuple[bytes, bool]] = queue.Queue()
        self.decided: dict[str, dict[str, Any]] = {}
        self.used: set[str] = set()
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="fake-gw")
        self.c.on_connect = lambda c, u, f, rc, p: c.subscribe(
            [(f"hx/v1/dev/{DEV}/scan", 1), (f"hx/v1/dev/{DEV}/status", 1)]
        )
        self.c.on_message = self._on_message
        if login is not None:
            self.c.username_pw_set(*login)
        self.c.connect(broker.host, broker.port)
        self.c.loop_start()

    def _on_message(self, c: paho.Client, u: Any, m: paho.MQTTMessage) -> None:
        if m.topic.endswith("/status"):
            self.status.put((m.payload, bool(m.retain)))
            return
        scan = json.loads(m.payload)
        self.scans.append(scan)
        sid = scan["sid"]
        if sid not in self.decided:
            code = scan["code"]
            ok = code.startswith("GOOD-") and code not in self.used
            self.used.add(code)
            self.decided[sid] = {
                "v": 1,
                "sid": sid,
                "ok": ok,
                "reason": "OK" if ok else "ALREADY_USED",
                "l1": "OK  Day Pass" if ok else "ALREADY USED",
                "l2": "0 of 1 left",
                "detail": "",
                "sound": "ok" if ok else "deny",
                "left": 0,
            }
        c.publish(f"hx/v1/dev/{DEV}/verdict", json.dumps(self.decided[sid]), qos=1)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


class Device:
    """One firmware process on the unix board: flash/out dirs, a pty as the scanner UART."""

    def __init__(
        self,
        tmp: Path,
        broker: Mosquitto,
        main: Path = FIRMWARE / "main.py",
        heap_k: int = 256,
        mode: str = "turnstile",
        device: str = DEV,
        **extra: Any,
    ) -> None:
        self.main = main
        self.heap_k = heap_k
        self.flash = tmp / "flash"
        self.out = tmp / "out"
        self.flash.mkdir(parents=True)
        (self.flash / "config.json").write_text(
            json.dumps(
                {
                    "device": device,
                    "site": "demo",
                    "gate": "G1",
                    "mode": mode,
                    "board": "unix",
                    "mqtt": {"host": broker.host, "port": broker.port, "keepalive": 10},
                    "heartbeat_s": 5,
                    "retry_ms": 1000,
                    "result_ms": 1000,
                    **extra,
                }
            )
        )
        self.master, slave = os.openpty()
        tty.setraw(self.master)
        os.set_blocking(self.master, False)
        self.port = os.ttyname(slave)
        self.slave = slave
        self.proc: subprocess.Popen[bytes] | None = None

    def sid(self, boot: int, seq: int) -> str:
        """The scan id the firmware gives scan ``seq`` of boot ``boot`` (its install id from flash)."""
        return f"{(self.flash / 'install').read_text().strip()}-{boot:x}-{seq:x}"
        self.seen = 0

    def start(self) -> None:
        env = dict(
            os.environ, HX_BOARD="unix", HX_FLASH=str(self.flash), HX_OUT=str(self.out), HX_UART=self.port
        )
        self.console = open(self.flash.parent / "console.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [str(MICROPYTHON), "-X", f"heapsize={self.heap_k}K", str(self.main)],
            env=env,
            stdout=self.console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.console.close()

    def events(self, ev: str | None = None, after: int = 0) -> list[dict[str, Any]]:
        try:
            lines = (self.out / "events.log").read_text().splitlines()
        except FileNotFoundError:
            return []
        out = [json.loads(ln) for ln in lines if ln.endswith("}")][after:]
        return [e for e in out if ev is None or e["ev"] == ev]

    def mark(self) -> int:
        return len(self.events())

    def wait(self, pred: Any, after: int = 0, what: str = "event", timeout: float = 30) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            assert self.proc is not None and self.proc.poll() is None, (
                self.flash.parent / "console.log"
            ).read_text()
            for e in self.events()[after:]:
                if pred(e):
                    return e
            return None

        return wait_for(find, timeout, what)

    def type(self, data: bytes) -> None:
        try:
            while os.read(self.master, 4096):
                pass  # drop the module probes the firmware sent
        except BlockingIOError:
            pass
        os.write(self.master, data)

    def press(self, *names: str) -> None:
        """Buttons (and the turnstile's `turned` sensor) as the unix board reads them: lines in HX_OUT/buttons."""
        with open(self.out / "buttons", "a") as f:
            for name in names:
                f.write(name + "\n")
                f.flush()
                time.sleep(0.12)  # the buttons task polls every 50 ms; one press per poll, like a finger

    def screen(self) -> tuple[bytes, bytes]:
        data = (self.out / "oled.pbm").read_bytes()
        return data[:10], data[10:]


def lit(body: bytes, x: int, y: int) -> bool:
    return bool(body[y * 16 + x // 8] & (0x80 >> (x % 8)))


@pytest.fixture
def rig(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[tuple[Device, FakeGateway, Mosquitto]]:
    gw = FakeGateway(mosquitto)
    dev = Device(tmp_path, mosquitto)
    dev.start()
    try:
        yield dev, gw, mosquitto
    finally:
        dev.kill()
        gw.close()


def test_scan_verdict_screen_sound_relay(rig: tuple[Device, FakeGateway, Mosquitto]) -> None:
    dev, gw, broker = rig
    dev.wait(lambda e: e["ev"] == "screen" and e["state"] == "READY", what="READY")
    status, _ = gw.status.get(timeout=20)
    st = json.loads(status)
    assert st["state"] == "online" and st["mode"] == "turnstile" and st["board"] == "unix"
    m = dev.mark()
    dev.type(b"GOOD-1\r\n")
    v = dev.wait(lambda e: e["ev"] == "verdict", m, "verdict")
    assert (v["sid"], v["ok"], v["reason"], v["shown"]) == (dev.sid(1, 1), True, "OK", True)
    dev.wait(lambda e: e["ev"] == "screen" and e["state"] == "OK", m, "OK screen")
    dev.wait(lambda e: e["ev"] == "buzzer" and e["sound"] == "ok", m, "ok sound")
    dev.wait(lambda e: e["ev"] == "relay" and e.get("ms") == 800, m, "relay pulse")
    assert gw.scans[0]["code"] == "GOOD-1" and gw.scans[0]["qty"] == 1
    # The latest frame may already be READY again; the numbered frames keep the OK screen.
    ok_frame = dev.wait(lambda e: e["ev"] == "screen" and e["state"] == "OK", m)["frame"]
    body = (dev.out / f"oled-{ok_frame:04d}.pbm").read_bytes()[10:]
    assert lit(body, 127, 63) and lit(body, 0, 20), "OK screen is drawn inverted"
    # Rescan after the dedupe window: ALREADY_USED, no relay.
    time.sleep(3.1)
    m = dev.mark()
    dev.type(b"GOOD-1\r\n")
    v = dev.wait(lambda e: e["ev"] == "verdict", m, "second verdict")
    assert (v["sid"], v["ok"], v["reason"]) == (dev.sid(1, 2), False, "ALREADY_USED")
    dev.wait(lambda e: e["ev"] == "buzzer" and e["sound"] == "deny", m, "deny sound")
    frame = dev.wait(lambda e: e["ev"] == "screen" and e["state"] == "DENIED", m)["frame"]
    body = (dev.out / f"oled-{frame:04d}.pbm").read_bytes()[10:]
    assert not lit(body, 127, 40)
    time.sleep(0.5)
    assert len([e for e in dev.events("relay") if e.get("ms")]) == 1, "relay only on OK"


def test_garbage_on_uart_does_not_crash(rig: tuple[Device, FakeGateway, Mosquitto]) -> None:
    dev, gw, broker = rig
    dev.wait(lambda e: e["ev"] == "screen" and e["state"] == "READY", what="READY")
    m = dev.mark()
    dev.type(bytes(range(256)) + b"\r\n" + b"\xff" * 2000 + b"\r\n" + b"\x1b[2J\r\n")
    dev.wait(lambda e: e["ev"] == "bad_code", m, "bad code")
    dev.type(b"GOOD-2\r\n")
    v = dev.wait(lambda e: e["ev"] == "verdict", m, "verdict after garbage")
    assert v["ok"] is True
    assert not dev.events("crash")
    assert [s["code"] for s in gw.scans] == ["GOOD-2"], "garbage never reached the gateway"


def test_offline_queue_power_cut_reboot_drains_in_order(rig: tuple[Device, FakeGateway, Mosquitto]) -> None:
    dev, gw, broker = rig
    dev.wait(lambda e: e["ev"] == "screen" and e["state"] == "READY", what="READY")
    # Mark before stopping: the device may notice the closed socket before stop() returns.
    m = dev.mark()
    broker.stop()
    dev.wait(lambda e: e["ev"] == "screen" and e["state"] == "OFFLINE", m, "OFFLINE")
    for code in (b"GOOD-A", b"GOOD-B", b"GOOD-C"):
        dev.type(code + b"\r\n")
        time.sleep(0.3)
    dev.wait(lambda e: e["ev"] == "scan" and e["outbox"] == 3, m, "three queued")
    assert not [e for e in dev.events("screen", m) if e["state"] == "OK"]
    dev.kill()  # power cut with three scans on flash
    assert len(os.listdir(dev.flash / "outbox")) == 3
    broker.start()
    m = dev.mark()
    dev.start()
    st = dev.wait(lambda e: e["ev"] == "start", m, "second boot")
    assert (st["boot"], st["outbox"]) == (2, 3)
    wait_for(lambda: not os.listdir(dev.flash / "outbox"), 30, "outbox drained")
    sids = [s["sid"] for s in gw.scans]
    assert sids[:3] == [dev.sid(1, 1), dev.sid(1, 2), dev.sid(1, 3)], sids
    assert [s["code"] for s in gw.scans[:3]] == ["GOOD-A", "GOOD-B", "GOOD-C"]
    assert len(gw.decided) == 3
    verdicts = dev.events("verdict", m)
    assert sorted(v["sid"] for v in verdicts) == [dev.sid(1, 1), dev.sid(1, 2), dev.sid(1, 3)] and all(
        v["ok"] for v in verdicts
    )
    m = dev.mark()
    dev.type(b"GOOD-D\r\n")
    v = dev.wait(lambda e: e["ev"] == "verdict", m, "scan after reboot")
    assert v["sid"] == dev.sid(2, 1), "scan ids never repeat across reboots"


def test_commands_show_beep_reboot(rig: tuple[Device, FakeGateway, Mosquitto]) -> None:
    dev, gw, broker = rig
    dev.wait(lambda e: e["ev"] == "screen" and e["state"] == "READY", what="READY")
    topic = f"hx/v1/dev/{DEV}/cmd"
    m = dev.mark()
    gw.c.publish(
        topic, json.dumps({"v": 1, "cmd": "show", "args": {"l1": "Provisioned", "l2": "Gate 3 ready"}}), qos=1
    )
    shown = dev.wait(lambda e: e["ev"] == "screen" and e["state"] == "MESSAGE", m, "show")
    assert (shown["l1"], shown["l2"]) == ("Provisioned", "Gate 3 ready")
    gw.c.publish(topic, json.dumps({"v": 1, "cmd": "beep", "args": {"sound": "attention"}}), qos=1)
    dev.wait(lambda e: e["ev"] == "buzzer" and e["sound"] == "attention", m, "beep")
    gw.c.publish(topic, b"not json", qos=1)
    dev.wait(lambda e: e["ev"] == "cmd" and "error" in e, m, "bad command logged")
    gw.c.publish(topic, json.dumps({"v": 1, "cmd": "reboot"}), qos=1)
    assert dev.proc is not None
    assert dev.proc.wait(20) == 75, "the unix board asks to be restarted with exit code 75"
    m = dev.mark()
    dev.start()
    assert dev.wait(lambda e: e["ev"] == "start", m, "boot after reboot")["boot"] == 2
