# End to end: the real CLI and mpremote provision an emulated board that then scans with its own login.
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.domain.ota import device_key
from tests.conftest import ROOT, GatewayProc
from tests.gateway.fleet_client import Client, FleetGateway, make_fleet_gateway
from tests.helpers import free_port, wait_for
from tools.emuboard.board import EmuBoard
from tools.provision.devconfig import ca_der
from tools.sim.pty_scanner import PtyScanner

pytestmark = pytest.mark.slow  # starts a gateway, a broker and the MicroPython VM

WIFI_SECRET = "wifi-Secret-4711"


class Bench:
    """A gateway with per-device logins, a board on a USB pty, and a GM65 on the board's UART."""

    def __init__(self, tmp: Path, gw: FleetGateway) -> None:
        self.gw = gw
        self.tmp = tmp
        self.scanner = PtyScanner()
        self.out = tmp / "out"
        self.board = EmuBoard(tmp / "flash", uart=self.scanner.port, out=self.out, heap="512K").start()

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        full_env = dict(os.environ, HX_TOKEN=self.gw.headers["authorization"][7:], COLUMNS="100", **env)
        return subprocess.run(
            [sys.executable, "-m", "tools.provision", *args],
            cwd=ROOT,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=180,
        )

    def install(self, device: str, *extra: str) -> tuple[subprocess.CompletedProcess[str], float]:
        t = time.monotonic()
        res = self.cli(
            "install",
            "--port",
            self.board.port,
            "--device",
            device,
            "--site",
            "s1",
            "--gate",
            "Gate 1",
            "--board",
            "unix",
            "--wifi-ssid",
            "ShopNet",
            "--gateway",
            self.gw.proc.http,
            "--timeout",
            "60",
            *extra,
            HX_WIFI_PASSWORD=WIFI_SECRET,
        )
        return res, time.monotonic() - t

    def events(self) -> list[dict[str, Any]]:
        path = self.out / "events.log"
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a line being written right now
        return out

    def redemptions(self, device: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.gw.api("GET", f"/api/redemptions?device={device}").json()["items"]
        return items

    def close(self) -> None:
        self.board.stop()
        self.scanner.close()


@pytest.fixture
def bench(tmp_path: Path, gateway_factory: Callable[..., GatewayProc]) -> Iterator[Bench]:
    # On the LAN, as in a shop: the board gets the gateway's CA and reaches the broker over TLS only.
    gw = make_fleet_gateway(
        tmp_path, gateway_factory, {"BROKER_BIND": "0.0.0.0", "BROKER_TLS_PORT": str(free_port())}
    )
    r = gw.api(
        "POST",
        "/api/orders",
        json={"orders": [{"code": f"HX-PROV-{i}", "title": "Day pass", "quantity": 1} for i in (1, 2, 3)]},
    )
    assert r.status_code == 201, r.text
    b = Bench(tmp_path, gw)
    try:
        yield b
    finally:
        b.close()


def test_provision_scan_revoke_reprovision(bench: Bench) -> None:
    res, took = bench.install("emu-1")
    print(f"\nprovisioning took {took:.1f} s (target <= 60 s)\n{res.stdout}")
    assert res.returncode == 0, (
        res.stdout + res.stderr + bench.board.transcript[-3000:].decode(errors="replace")
    )
    assert "Provisioned ✓" in res.stdout
    assert "login generation 1" in res.stdout

    # The device holds its own login; nothing printed or stored at the gateway shows a secret.
    cfg = json.loads((bench.board.flash / "config.json").read_text())
    assert cfg["device"] == "emu-1" and cfg["mqtt"]["user"] == "emu-1" and cfg["site"] == "s1"
    secret = cfg["mqtt"]["password"]
    assert len(secret) == 32 and cfg["wifi"] == {"ssid": "ShopNet", "password": WIFI_SECRET}
    # TLS with the gateway's CA, written next to the config: the board dialled the TLS port and verified it.
    broker = bench.gw.api("GET", "/api/fleet/broker").json()
    assert cfg["mqtt"]["ca"] == "ca.der" and cfg["mqtt"]["port"] == broker["port"] != bench.gw.broker_port
    assert (bench.board.flash / "ca.der").read_bytes() == ca_der(broker)
    # Its own over-the-air update key, derived from the gateway's VAR_DIR/ota-key (docs/firmware.md).
    master = bytes.fromhex((bench.gw.proc.var_dir / "ota-key").read_text().strip())
    assert cfg["ota_key"] == device_key(master, "emu-1").hex() != master.hex()
    assert any(e.get("ev") == "mqtt" and e.get("state") == "up" and e.get("tls") for e in bench.events())
    for text in (res.stdout, res.stderr, bench.gw.proc.log()):
        assert secret not in text and WIFI_SECRET not in text
    assert secret.encode() not in bench.gw.proc.db_path.read_bytes()
    assert (bench.board.flash / "hx").is_dir() and list((bench.board.flash / "hx").glob("*.mpy"))

    # It booted the installed firmware and obeyed the greeting commands.
    ev = wait_for(
        lambda: [e for e in bench.events() if e.get("ev") == "screen" and e.get("l1") == "Provisioned"],
        20,
        "'Provisioned' on the OLED",
    )
    assert ev
    assert any(e.get("ev") == "buzzer" for e in bench.events())
    view = bench.gw.api("GET", "/api/fleet/devices/emu-1").json()
    assert view["online"] and view["credentials"] == "active" and view["fw"]

    # A code typed into the scanner (GM65 wire format) is redeemed.
    bench.scanner.present("HX-PROV-1")
    first = wait_for(lambda: bench.redemptions("emu-1"), 30, "redemption of the first scan")
    assert first[0]["code"] == "HX-PROV-1" and first[0]["ok"] is True

    # Revoke: the broker drops the device and refuses it; a scan now waits in its outbox.
    r = bench.gw.api("POST", "/api/fleet/devices/emu-1/revoke")
    assert r.status_code == 200, r.text
    wait_for(
        lambda: not bench.gw.api("GET", "/api/fleet/devices/emu-1").json()["online"], 20, "device offline"
    )
    intruder = Client("127.0.0.1", bench.gw.broker_port, "emu-1", secret)
    assert "Not authorized" in intruder.wait_refused()
    intruder.close()
    n_events = len(bench.events())
    bench.scanner.present("HX-PROV-2")
    wait_for(
        lambda: [
            e for e in bench.events()[n_events:] if e.get("ev") == "scan" and e.get("code") == "HX-PROV-2"
        ],
        20,
        "scan queued on the device",
    )
    # The device keeps trying to log in and is refused: wait for a retry after the scan was queued.
    wait_for(
        lambda: [e for e in bench.events()[n_events:] if e.get("ev") == "mqtt" and e.get("state") == "retry"],
        60,
        "a refused login attempt",
    )
    assert [x["code"] for x in bench.redemptions("emu-1")] == ["HX-PROV-1"]

    # Re-provisioning rotates the login; the queued scan is kept on the board and redeemed afterwards.
    res2, took2 = bench.install("emu-1")
    print(f"re-provisioning took {took2:.1f} s\n{res2.stdout}")
    assert res2.returncode == 0, res2.stdout + res2.stderr
    assert "login generation 2 (old login revoked)" in res2.stdout
    cfg2 = json.loads((bench.board.flash / "config.json").read_text())
    assert cfg2["mqtt"]["password"] != secret
    wait_for(
        lambda: len(bench.redemptions("emu-1")) == 2, 60, "the queued scan redeemed after re-provisioning"
    )
    assert sorted(x["code"] for x in bench.redemptions("emu-1")) == ["HX-PROV-1", "HX-PROV-2"]


def test_dry_run_changes_nothing(bench: Bench) -> None:
    res, _ = bench.install("emu-2", "--dry-run")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Dry run" in res.stdout or "dry run" in res.stdout
    assert '"password": "(set)"' in res.stdout
    assert WIFI_SECRET not in res.stdout
    assert not (bench.board.flash / "config.json").exists()
    assert not (bench.board.flash / "hx").exists()
    assert bench.gw.api("GET", "/api/fleet/devices/emu-2").status_code == 404


def test_backup_and_restore(bench: Bench, tmp_path: Path) -> None:
    res, _ = bench.install("emu-3", "--no-verify")
    assert res.returncode == 0, res.stdout + res.stderr
    saved = tmp_path / "emu-3.json"
    b = bench.cli("backup", "--port", bench.board.port, "--out", str(saved))
    assert b.returncode == 0, b.stdout + b.stderr
    cfg = json.loads(saved.read_text())
    assert saved.stat().st_mode & 0o077 == 0  # the backup holds secrets: owner-only
    assert cfg["mqtt"]["password"] not in b.stdout and WIFI_SECRET not in b.stdout
    assert '"(set)"' in b.stdout

    (bench.board.flash / "config.json").unlink()  # e.g. a replacement board
    r = bench.cli("restore", "--port", bench.board.port, "--file", str(saved), "--no-reset")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads((bench.board.flash / "config.json").read_text()) == cfg

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**cfg, "heartbeat": 5}))
    r = bench.cli("restore", "--port", bench.board.port, "--file", str(bad))
    assert r.returncode == 2 and "unknown keys: heartbeat" in r.stdout
