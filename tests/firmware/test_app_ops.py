# The firmware's operations beyond a plain redeem on the unix board, against a real Mosquitto and a
# scripted gateway stand-in: handheld check -> pick with buttons -> redeem, voucher amounts, the PIN
# sign-in (never logged), and the turnstile annul when the "turned" sensor stays quiet.
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest

from gateway.adapters.brokers.mosquitto import Mosquitto
from tests.firmware.test_app_host import Device
from tools.sim.oled import read_pbm

DEV = "fw-ops-1"


def _verdict(sid: str, ok: bool, reason: str, l1: str, l2: str, sound: str, **extra: Any) -> dict[str, Any]:
    return {
        "v": 1,
        "sid": sid,
        "ok": ok,
        "reason": reason,
        "l1": l1,
        "l2": l2,
        "detail": "",
        "sound": sound,
        "left": extra.pop("left", None),
        **extra,
    }


class OpsGateway:
    """Answers like the gateway: VIP-* is a 10-unit order, CASH-* a 50.00 voucher, PIN 4321 is ana."""

    def __init__(self, broker: Mosquitto) -> None:
        self.scans: list[dict[str, Any]] = []
        self.left = {"VIP-1": 10, "VIP-2": 10}
        self.bal = {"CASH-1": 5000}
        self.decided: dict[str, dict[str, Any]] = {}
        self.silent_ops: set[str] = set()
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="ops-gw")
        self.c.on_connect = lambda c, u, f, rc, p: c.subscribe(f"hx/v1/dev/{DEV}/scan", 1)
        self.c.on_message = self._on_message
        self.c.connect(broker.host, broker.port)
        self.c.loop_start()

    def _decide(self, s: dict[str, Any]) -> dict[str, Any]:
        op, sid, code = s.get("op", "redeem"), s["sid"], s.get("code", "")
        if op == "login":
            if s["pin"] == "4321":
                return _verdict(sid, True, "OK", "HELLO ANA", "signed in", "ok")
            return _verdict(sid, False, "BAD_PIN", "WRONG PIN", "try again", "error")
        if op == "logout":
            return _verdict(sid, True, "OK", "SIGNED OUT", "", "ok")
        if op == "annul":
            return _verdict(sid, True, "OK", "ANNULLED", "1 restored", "ok", left=1)
        if code in self.bal:
            bal = self.bal[code]
            if op == "check":
                return _verdict(
                    sid,
                    True,
                    "OK",
                    "Cash 50",
                    "bal 50.00",
                    "ok",
                    kind="value",
                    check=True,
                    max=bal,
                    bal=bal,
                    title="Cash 50",
                    left=bal,
                )
            self.bal[code] = bal - s["amt"]
            return _verdict(sid, True, "OK", "OK Cash 50", "paid", "ok", kind="value", bal=bal - s["amt"])
        if code not in self.left:
            return _verdict(sid, False, "UNKNOWN_CODE", "UNKNOWN CODE", "not an order", "deny")
        left = self.left[code]
        if op == "check":
            return _verdict(
                sid,
                True,
                "OK",
                "VIP",
                f"{left} left",
                "ok",
                kind="pack",
                check=True,
                max=left,
                title="VIP x10",
                left=left,
            )
        self.left[code] = left - s["qty"]
        return _verdict(
            sid, True, "OK", "OK VIP", f"{left - s['qty']} of 10 left", "ok", left=left - s["qty"]
        )

    def _on_message(self, c: paho.Client, u: Any, m: paho.MQTTMessage) -> None:
        s = json.loads(m.payload)
        self.scans.append(s)
        if s.get("op", "redeem") in self.silent_ops:
            return
        if s["sid"] not in self.decided or s.get("op") in ("check", "login", "logout"):
            self.decided[s["sid"]] = self._decide(s)
        c.publish(f"hx/v1/dev/{DEV}/verdict", json.dumps(self.decided[s["sid"]]), qos=1)

    def ops(self, op: str) -> list[dict[str, Any]]:
        return [s for s in self.scans if s.get("op", "redeem") == op]

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


@pytest.fixture
def gw(mosquitto: Mosquitto) -> Iterator[OpsGateway]:
    g = OpsGateway(mosquitto)
    try:
        yield g
    finally:
        g.close()


def _device(tmp: Path, broker: Mosquitto, mode: str, **extra: Any) -> Device:
    dev = Device(tmp, broker, mode=mode, device=DEV, **extra)
    dev.start()
    dev.wait(lambda e: e["ev"] == "screen" and e["state"] == "READY", what="READY")
    return dev


def _screen(dev: Device, state: str, after: int, **want: str) -> dict[str, Any]:
    return dev.wait(
        lambda e: e["ev"] == "screen" and e["state"] == state and all(e.get(k) == v for k, v in want.items()),
        after,
        f"{state} {want}",
    )


def test_check_pick_three_then_redeem(tmp_path: Path, mosquitto: Mosquitto, gw: OpsGateway) -> None:
    dev = _device(tmp_path, mosquitto, "handheld", pick=True)
    try:
        m = dev.mark()
        dev.type(b"VIP-1\r\n")
        _screen(dev, "PICK", m, l1="VIP x10", l2="10 left  x1")
        assert [s["op"] for s in gw.scans] == ["check"] and not list((dev.flash / "outbox").iterdir())
        dev.press("up", "up")
        shown = _screen(dev, "PICK", m, l2="10 left  x3")
        frame = read_pbm(dev.out / f"oled-{shown['frame']:04d}.pbm")
        for text in ("REDEEM?", "VIP x10", "10 left  x3", "+/- hold:10 OK"):
            assert frame.contains_text(text), (text, frame.text_lines())
        assert len(gw.scans) == 1, "picking sends nothing"
        dev.press("ok")
        v = dev.wait(lambda e: e["ev"] == "verdict" and e["sid"] == dev.sid(1, 2), m, "redeem verdict")
        assert v["ok"] is True
        _screen(dev, "OK", m, l1="OK VIP", l2="7 of 10 left")
        red = gw.ops("redeem")
        assert [(s["sid"], s["code"], s["qty"]) for s in red] == [(dev.sid(1, 2), "VIP-1", 3)]
        assert gw.left["VIP-1"] == 7
        # A code the gateway does not know: the denial comes at once, no picker.
        time.sleep(1.2)
        m = dev.mark()
        dev.type(b"NOPE-1\r\n")
        _screen(dev, "DENIED", m, l1="UNKNOWN CODE")
        assert not [e for e in dev.events("screen", m) if e["state"] == "PICK"]
        assert len(gw.ops("redeem")) == 1
    finally:
        dev.kill()


def test_voucher_amount_and_picker_timeout(tmp_path: Path, mosquitto: Mosquitto, gw: OpsGateway) -> None:
    dev = _device(tmp_path, mosquitto, "handheld", pick=True, pick_ms=2000)
    try:
        m = dev.mark()
        dev.type(b"CASH-1\r\n")
        _screen(dev, "PICK", m, l2="pay 1.00")
        dev.press("up_long", "up_long", "down")
        _screen(dev, "PICK", m, l2="pay 20.00")
        dev.press("ok")
        dev.wait(lambda e: e["ev"] == "verdict" and e["ok"], m, "voucher paid")
        assert [(s["amt"], s["qty"]) for s in gw.ops("redeem")] == [(2000, 1)]
        assert gw.bal["CASH-1"] == 3000
        # Left alone on the picker: back to READY, nothing redeemed.
        time.sleep(3.2)
        m = dev.mark()
        dev.type(b"VIP-1\r\n")
        _screen(dev, "PICK", m)
        _screen(dev, "READY", m)
        time.sleep(0.5)
        assert len(gw.ops("redeem")) == 1 and gw.left["VIP-1"] == 10
    finally:
        dev.kill()


def test_check_without_answer_is_not_retried(tmp_path: Path, mosquitto: Mosquitto, gw: OpsGateway) -> None:
    gw.silent_ops.add("check")
    dev = _device(tmp_path, mosquitto, "handheld", pick=True, verdict_timeout_ms=1500)
    try:
        m = dev.mark()
        dev.type(b"VIP-1\r\n")
        _screen(dev, "ERROR", m, l1="NO ANSWER", l2="rescan")
        time.sleep(2.5)
        assert len(gw.ops("check")) == 1, "a check is asked once, never from the outbox"
        assert not list((dev.flash / "outbox").iterdir())
    finally:
        dev.kill()


def test_pin_sign_in_and_out_never_logged(tmp_path: Path, mosquitto: Mosquitto, gw: OpsGateway) -> None:
    dev = _device(tmp_path, mosquitto, "handheld", pick=True)
    try:
        m = dev.mark()
        dev.press("ok_long")
        _screen(dev, "PIN", m, l1="PIN 4-8 digits", l2="")
        for digit in (4, 3, 2, 1):
            dev.press(*(["up"] * (digit + 1)), "ok")
        shown = _screen(dev, "PIN", m, l2="****")
        frame = read_pbm(dev.out / f"oled-{shown['frame']:04d}.pbm")
        for text in ("SIGN IN", "PIN 4-8 digits", "****", "OK empty=send"):
            assert frame.contains_text(text), (text, frame.text_lines())
        dev.press("ok")
        _screen(dev, "OK", m, l1="HELLO ANA")
        login = gw.ops("login")
        assert [s["pin"] for s in login] == ["4321"]
        dev.press("ok", "ok_long", "ok")  # dismiss, open the menu, an empty PIN = sign out
        _screen(dev, "OK", m, l1="SIGNED OUT")
        assert len(gw.ops("logout")) == 1
        # A wrong PIN is shown as an error.
        m = dev.mark()
        dev.press("ok", "ok_long", *(["up"] * 10), "ok", "up", "ok", "up", "ok", "up", "ok", "ok")
        _screen(dev, "ERROR", m, l1="WRONG PIN")
        assert gw.ops("login")[-1]["pin"] == "9000"
        # Every field of every event except its timestamp (milliseconds may contain any 4 digits).
        logged = [
            json.dumps({k: v for k, v in json.loads(line).items() if k != "t"})
            for line in (dev.out / "events.log").read_text().splitlines()
            if line.strip()
        ]
        assert not [e for e in logged if "4321" in e or "9000" in e], "a PIN never reaches the event log"
        assert not list((dev.flash / "outbox").iterdir()), "nor the flash"
        names = {e["name"] for e in dev.events("button")}
        assert names <= {"ok", "ok_long", "*"}, names
    finally:
        dev.kill()


def test_turnstile_annuls_when_not_turned(tmp_path: Path, mosquitto: Mosquitto, gw: OpsGateway) -> None:
    dev = _device(tmp_path, mosquitto, "turnstile", turn_sensor=True, turn_ms=1500)
    try:
        m = dev.mark()
        dev.type(b"VIP-1\r\n")
        dev.wait(lambda e: e["ev"] == "relay" and e.get("ms"), m, "relay pulse")
        dev.press("turned")
        time.sleep(2.5)
        assert not gw.ops("annul"), "the turn was seen"
        m = dev.mark()
        dev.type(b"VIP-2\r\n")
        dev.wait(lambda e: e["ev"] == "relay" and e.get("ms"), m, "second relay pulse")
        _screen(dev, "DENIED", m, l1="NOT PASSED", l2="annulled")
        annul = gw.ops("annul")
        redeems = gw.ops("redeem")
        assert [(a["ref"]) for a in annul] == [redeems[-1]["sid"]]
        assert len([e for e in dev.events("relay", m) if e.get("ms")]) == 1, "no pulse for the annul"
        dev.wait(lambda e: e["ev"] == "verdict" and e["sid"] == annul[0]["sid"], m, "annul verdict")
        assert not list((dev.flash / "outbox").iterdir())
    finally:
        dev.kill()


def test_turnstile_without_sensor_never_annuls(tmp_path: Path, mosquitto: Mosquitto, gw: OpsGateway) -> None:
    dev = _device(tmp_path, mosquitto, "turnstile", turn_ms=1000)
    try:
        m = dev.mark()
        dev.type(b"VIP-1\r\n")
        dev.wait(lambda e: e["ev"] == "relay" and e.get("ms"), m, "relay pulse")
        time.sleep(2.5)
        assert not gw.ops("annul") and not gw.ops("check")
        assert [s["qty"] for s in gw.ops("redeem")] == [1]
    finally:
        dev.kill()
