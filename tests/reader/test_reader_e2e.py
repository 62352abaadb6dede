# End to end: the real Linux reader process (python -m reader) against the real gateway and its TLS broker,
# provisioned by `tools.provision linux`, with only the hardware simulated (reader/sim.py): keystrokes
# of a keyboard-wedge scanner, the OLED's I2C writes by Adafruit's driver, the relay's GPIO line, the
# turn sensor's edges and the ok button.
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import settle
from tests.e2e.test_lan_broker import lan_gw  # noqa: F401  (the gateway with its TLS broker)
from tests.gateway.fleet_client import FleetGateway
from tests.helpers import wait_for
from tests.reader.process import RELAY, ROOT, TIMEOUT, TURN, ReaderProcess
from tools.sim.png import render_png

pytestmark = pytest.mark.slow  # a gateway, its Mosquitto and the reader


def provision(g: FleetGateway, folder: Path, device: str, *extra: str, **cfg_keys: Any) -> None:
    """`python -m tools.provision linux`, as an installer runs it, against the running gateway."""
    broker = g.api("GET", "/api/fleet/broker").json()
    cmd = [
        sys.executable,
        "-m",
        "tools.provision",
        "linux",
        "--device",
        device,
        "--site",
        "s1",
        "--gate",
        "G1",
        "--mode",
        "turnstile",
        "--out",
        str(folder),
        "--gateway",
        g.proc.http,
        "--broker-host",
        "127.0.0.1",
        "--broker-port",
        str(broker["port"]),
        *extra,
    ]
    env = {"HX_TOKEN": g.headers["authorization"].split()[1], "PATH": "/usr/bin:/bin"}
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    cfg = json.loads((folder / "config.json").read_text())
    assert cfg["mqtt"]["ca"] == "ca.der" and cfg["mqtt"]["user"] == device and cfg["board"] == "linux"
    assert (folder / "config.json").stat().st_mode & 0o077 == 0
    cfg["dedupe_ms"] = 300  # the repeat scan below comes sooner than the 3 s a real queue would take
    cfg.update(cfg_keys)
    (folder / "config.json").write_text(json.dumps(cfg))


@pytest.fixture
def readers() -> Iterator[list[ReaderProcess]]:
    """Reader processes of a test, stopped at its end whatever happened."""
    made: list[ReaderProcess] = []
    yield made
    for r in made:
        if r.proc is not None:
            r.stop()


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[socket.socket]:
    """A stand-in for systemd's $NOTIFY_SOCKET."""
    path = tmp_path / "notify.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.settimeout(TIMEOUT)
    yield s
    s.close()


def notified(s: socket.socket, want: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if want in s.recv(4096).decode().split("\n"):
            return
    raise AssertionError(f"systemd was never told {want}")


def verdict_screen(r: ReaderProcess, after: int, sid: str) -> tuple[dict[str, Any], dict[str, Any]]:
    v = r.wait_event(lambda e: e.get("ev") == "verdict" and e.get("sid") == sid, after, f"verdict {sid}")
    shown = r.wait_event(
        lambda e: e.get("ev") == "screen" and e.get("state") in ("OK", "DENIED"), after, "result"
    )
    return v, shown


def redemptions(g: FleetGateway, device: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = g.api("GET", f"/api/redemptions?device={device}&limit=100").json()["items"]
    return items


def test_wedge_scan_redeems_over_tls_repeat_is_used_and_offline_scans_survive_a_restart(
    lan_gw: tuple[FleetGateway, Path],  # noqa: F811
    tmp_path: Path,
    notify: socket.socket,
    readers: list[ReaderProcess],
) -> None:
    g, _ = lan_gw
    for code in ("HX-PI-1", "HX-PI-2"):
        r = g.api(
            "POST", "/api/orders", json={"orders": [{"code": code, "title": "Day pass", "quantity": 1}]}
        )
        assert r.status_code == 201, r.text
    folder = tmp_path / "reader"
    provision(g, folder, "pi-1")
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "3000000"}
    rd = ReaderProcess(folder, env)
    readers.append(rd)
    rd.simulate()
    rd.start()
    up = rd.wait_event(lambda e: e.get("ev") == "mqtt" and e.get("state") == "up", what="TLS up")
    assert up["tls"] is True
    rd.wait_event(lambda e: e.get("ev") == "screen" and e.get("state") == "READY", what="READY")
    notified(notify, "READY=1")
    notified(notify, "WATCHDOG=1")
    assert rd.levels(RELAY)[:1] == [0], "the relay line is driven inactive first"
    shots = tmp_path / "shots"
    shots.mkdir()

    # 1. A keyboard-wedge scan redeems: OK on the OLED (Adafruit's driver's pixels), one relay pulse.
    mark = rd.mark()
    rd.type("HX-PI-1")
    scan = rd.wait_event(lambda e: e.get("ev") == "scan", mark, "the scan")
    assert scan["code"] == "HX-PI-1"
    v, shown = verdict_screen(rd, mark, scan["sid"])
    assert v["ok"] is True and v["reason"] == "OK" and shown["state"] == "OK"
    frame = rd.frame(shown["frame"])
    assert frame.contains_text("** OK **") and frame.contains_text(shown["l1"]), frame.text_lines()
    render_png(frame, shots / "reader-ok.png", palette="yellow-blue")
    wait_for(lambda: rd.pulses() == 1 and rd.levels(RELAY)[-1] == 0, TIMEOUT, "one relay pulse, then open")

    # 2. The same code again: the gateway's "already used" answer, DENIED on screen, the relay stays shut.
    mark = rd.mark()
    rd.type("HX-PI-1")
    scan = rd.wait_event(lambda e: e.get("ev") == "scan", mark, "the repeat scan")
    v, shown = verdict_screen(rd, mark, scan["sid"])
    assert v["ok"] is False and v["reason"] == "ALREADY_USED" and shown["state"] == "DENIED", v
    frame = rd.frame(shown["frame"])
    assert frame.contains_text("DENIED") and frame.contains_text(shown["l1"]), frame.text_lines()
    render_png(frame, shots / "reader-used.png", palette="yellow-blue")

    # 3. The broker goes away (the gateway stops, and its broker with it): a scan queues on disk, the
    # reader is restarted (systemd, a power cut), the broker returns: the scan is uploaded and redeemed
    # once, and its late OK opens nothing (nobody saw it on screen).
    g.proc.stop()
    rd.wait_event(lambda e: e.get("ev") == "mqtt" and e.get("state") == "down", mark, "link down")
    mark = rd.mark()
    rd.type("HX-PI-2")
    scan = rd.wait_event(lambda e: e.get("ev") == "scan", mark, "the offline scan")
    sid = scan["sid"]
    queued = rd.wait_event(lambda e: e.get("ev") == "screen" and e.get("l2") == "queued: 1", mark, "queued")
    frame = rd.frame(queued["frame"])
    render_png(frame, shots / "reader-queued.png", palette="yellow-blue")
    assert frame.contains_text("OFF q1") and frame.contains_text("queued: 1"), frame.text_lines()
    assert rd.stop() == 0
    assert rd.levels(RELAY)[-1] == 0, "the relay is left open at exit"
    assert len(list((folder / "outbox").iterdir())) == 1, "the scan waits on disk"
    mark = rd.mark()
    rd.start()
    start = rd.wait_event(lambda e: e.get("ev") == "start", mark, "restart")
    assert start["outbox"] == 1 and start["boot"] == 2
    g.proc.start()
    late = rd.wait_event(lambda e: e.get("ev") == "late_verdict" and e.get("sid") == sid, mark, "the late OK")
    assert late["ok"] is True and late["reason"] == "OK"
    settle(rd)  # type: ignore[arg-type]  (the firmware process's helper: it needs only mark())
    assert rd.pulses() == 1, "only the OK on screen ever pulsed the relay"
    assert not list((folder / "outbox").iterdir())
    rows = redemptions(g, "pi-1")
    assert sorted((x["code"], x["reason"]) for x in rows) == [
        ("HX-PI-1", "ALREADY_USED"),
        ("HX-PI-1", "OK"),
        ("HX-PI-2", "OK"),
    ], rows
    assert [x["scan_id"] for x in rows if x["code"] == "HX-PI-2"] == [sid]
    assert rd.stop() == 0


def order(g: FleetGateway, code: str) -> dict[str, Any]:
    o: dict[str, Any] = g.api("GET", f"/api/orders/{code}").json()
    return o


def redeem_ok(rd: ReaderProcess, code: str) -> str:
    """Scan `code`: OK on screen and one more relay pulse (then open); its scan id."""
    pulses = rd.pulses()
    mark = rd.mark()
    rd.type(code)
    scan = rd.wait_event(lambda e: e.get("ev") == "scan" and e.get("code") == code, mark, f"scan {code}")
    v, shown = verdict_screen(rd, mark, scan["sid"])
    assert v["ok"] is True and v["reason"] == "OK" and shown["state"] == "OK", (v, shown)
    wait_for(lambda: rd.pulses() == pulses + 1 and rd.levels(RELAY)[-1] == 0, TIMEOUT, "one pulse, then open")
    return str(scan["sid"])


def test_turnstile_turns_keep_redemptions_a_short_pulse_counts_no_turn_annuls_and_ok_dismisses(
    lan_gw: tuple[FleetGateway, Path],  # noqa: F811
    tmp_path: Path,
    readers: list[ReaderProcess],
) -> None:
    g, _ = lan_gw
    codes = ("HX-TURN-A", "HX-TURN-C", "HX-TURN-B")
    orders = [{"code": c, "title": "Day pass", "quantity": 1} for c in codes]
    r = g.api("POST", "/api/orders", json={"orders": orders})
    assert r.status_code == 201, r.text
    folder = tmp_path / "reader"
    # The longest turn window first (nothing is annulled while a turn is on its way) and a result screen
    # that stays: only the ok button takes it away.
    provision(g, folder, "pi-turn", "--turn-sensor", turn_ms=60000, result_ms=600000)
    rd = ReaderProcess(folder)
    readers.append(rd)
    rd.simulate(turn={"line": TURN})
    rd.start()
    rd.wait_event(lambda e: e.get("ev") == "screen" and e.get("state") == "READY", what="READY")

    # (a) OK, exactly one relay pulse, the turnstile turns: the watch ends, the redemption stands.
    mark = rd.mark()
    sid_a = redeem_ok(rd, "HX-TURN-A")
    rd.turn()
    turned = rd.wait_event(lambda e: e.get("ev") == "turned", mark, "the turn")
    assert turned["watching"] is True, "the turn ended the OK's watch"

    # (c) A pulse of 3 ms on the sensor is a turn as well.
    mark = rd.mark()
    redeem_ok(rd, "HX-TURN-C")
    rd.turn(ms=3)
    turned = rd.wait_event(lambda e: e.get("ev") == "turned", mark, "the short turn")
    assert turned["watching"] is True, "the short pulse ended the OK's watch"

    # The ok button dismisses the OK screen (it would otherwise stay 10 minutes): READY again.
    mark = rd.mark()
    rd.press()
    rd.wait_event(lambda e: e.get("ev") == "button" and e.get("name") == "ok", mark, "the ok button")
    rd.wait_event(
        lambda e: e.get("ev") == "screen" and e.get("state") == "READY", mark, "READY by the button"
    )
    assert rd.stop() == 0

    # (b) The shortest window the config allows: an OK nobody turns for is annulled, the unit comes back.
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(turn_ms=1000, result_ms=3000)
    (folder / "config.json").write_text(json.dumps(cfg))
    mark = rd.mark()
    rd.start()
    rd.wait_event(lambda e: e.get("ev") == "screen" and e.get("state") == "READY", mark, "READY again")
    sid_b = redeem_ok(rd, "HX-TURN-B")
    annul = rd.wait_event(lambda e: e.get("ev") == "annul", mark, "the annul")
    assert annul["ref"] == sid_b and annul["sid"], annul
    v = rd.wait_event(
        lambda e: e.get("ev") == "verdict" and e.get("sid") == annul["sid"], mark, "its verdict"
    )
    assert v["ok"] is True, v
    rd.wait_event(
        lambda e: e.get("ev") == "screen" and e.get("l2") == "annulled", mark, "NOT PASSED, annulled"
    )
    settle(rd)  # type: ignore[arg-type]  (the firmware process's helper: it needs only mark())
    assert rd.pulses() == 3, "one pulse per OK; the annul opened nothing"
    assert [e["ref"] for e in rd.events() if e.get("ev") == "annul"] == [sid_b], "only the unturned OK"
    a, c, b = (order(g, x) for x in codes)
    assert (a["used"], a["left"]) == (1, 0) and (c["used"], c["left"]) == (1, 0), (a, c)
    assert (b["used"], b["left"]) == (0, 1), b
    rows = redemptions(g, "pi-turn")
    assert [x["scan_id"] for x in rows if x["code"] == "HX-TURN-A"] == [sid_a], rows
    assert rd.stop() == 0
