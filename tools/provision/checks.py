# The install flow's checks: board profile, broker address, the board's current config, coming online.
from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlsplit

from tools.provision.build import ROOT
from tools.provision.device import Device
from tools.provision.errors import DeviceError, UsageError
from tools.provision.gwclient import Gateway
from tools.provision.ui import Steps, console

BOARDS_DIR = ROOT / "hardware" / "boards"


def board_profile(board: str) -> dict[str, Any] | None:
    if board == "unix":
        return None  # the host build (simulator, emulated board) has no pins
    path = BOARDS_DIR / f"{board}.json"
    if not path.is_file():
        known = sorted(p.stem for p in BOARDS_DIR.glob("*.json")) if BOARDS_DIR.is_dir() else []
        raise UsageError(f"no board profile {board!r}", f"known boards: {', '.join(known + ['unix'])}")
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def broker_host(gw_url: str, given: str | None, broker: dict[str, Any], board: str) -> str:
    host = given or broker.get("host") or urlsplit(gw_url).hostname or "127.0.0.1"
    if board != "unix" and host in ("127.0.0.1", "localhost", "::1"):
        console.print(
            "[yellow]! The broker address is 127.0.0.1: a WiFi scanner cannot reach that. Start the gateway "
            "with BROKER_BIND=0.0.0.0 and pass --broker-host <this computer's LAN address>.[/]"
        )
    names = broker.get("names")
    if broker.get("tls") and isinstance(names, list) and str(host).lower() not in names:
        # The firmware checks the broker's certificate against the name it dials: it would never connect.
        raise UsageError(
            f"the broker's TLS certificate does not cover {host!r} (it covers {', '.join(names)})",
            "pass one of those as --broker-host, or add it to BROKER_NAMES and restart the gateway",
        )
    return str(host)


def current_config(dev: Device) -> dict[str, Any] | None:
    raw = dev.read_file("config.json")
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def wait_online(
    steps: Steps, gw: Gateway, device: str, before: dict[str, Any] | None, timeout: float
) -> dict[str, Any]:
    """Wait for a fresh retained "online" status (last_seen moved on), then beep and greet."""
    seen_before = before.get("last_seen") if before else None

    def poll() -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            view = gw.device(device)
            if view and view.get("online") and view.get("last_seen") != seen_before:
                return view
            time.sleep(0.25)
        raise DeviceError(
            f"{device} did not come online within {timeout:.0f} s",
            "check the WiFi name/password and that the gateway's broker is reachable from the shop WiFi; "
            "`python -m tools.provision backup` shows what the board has",
        )

    view = steps.run(
        "Waiting for the device to come online",
        poll,
        lambda v: f"fw {v.get('fw')}, {v.get('board')}, ip {v.get('ip')}, rssi {v.get('rssi')}",
    )

    def greet() -> None:
        gw.command(device, "beep", {"sound": "ok"})
        gw.command(device, "show", {"l1": "Provisioned", "l2": (view.get("gate") or device)[:16]})

    steps.run("Beep and 'Provisioned' on the screen", greet)
    return view
