# `provision linux`: register a Linux reader (reader/, docs/reader.md) and write its state folder.
from __future__ import annotations

import os
import shutil
from pathlib import Path

import typer

from tools.provision import devconfig
from tools.provision.build import ROOT
from tools.provision.checks import broker_host as pick_broker_host
from tools.provision.gwclient import Gateway
from tools.provision.options import BrokerHostOpt, BrokerPortOpt, GatewayCaOpt, GatewayOpt, TokenOpt
from tools.provision.ui import console, reporting

BOARD = "linux"
PI_PROFILE = ROOT / "reader" / "boards" / "raspberry-pi.json"


def _write_private(path: Path, data: bytes) -> None:
    """0600 from the first byte (the file holds the device's MQTT secret), then renamed into place."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def linux(
    device: str = typer.Option(..., "--device", "-d", help="device id, e.g. gate-3 (also its MQTT login)"),
    site: str = typer.Option(..., "--site", "-s", help="site slug the reader belongs to"),
    out: Path = typer.Option(
        ..., "--out", "-o", help="the reader's state folder to write (on the Pi: /var/lib/hexiao-reader)"
    ),
    gate: str = typer.Option("", "--gate", "-g", help="name shown on the reader, e.g. 'Gate 3'"),
    mode: str = typer.Option("turnstile", "--mode", "-m", help="handheld or turnstile"),
    pick: bool = typer.Option(False, "--pick/--no-pick", help="handheld: check first, let staff pick"),
    turn_sensor: bool = typer.Option(False, "--turn-sensor", help="turnstile: annul an OK nobody passed"),
    board_file: Path = typer.Option(
        None, "--board-file", help="hardware description (default: reader/boards/raspberry-pi.json)"
    ),
    gateway: str = GatewayOpt,
    gateway_ca: Path = GatewayCaOpt,
    token: str = TokenOpt,
    broker_host: str = BrokerHostOpt,
    broker_port: int = BrokerPortOpt,
) -> None:
    """Register a Linux reader at the gateway (a fresh login) and write config.json, ca.der and board.json
    into --out: run it on the reader itself, or elsewhere and copy the folder over SSH (docs/reader.md).
    Running it again rotates the login; scans waiting in the folder's outbox are kept."""
    with reporting():
        placement = devconfig.Placement(device, site, gate, mode, BOARD, pick, turn_sensor)
        placement.check()
        gw = Gateway(gateway, token, ca=gateway_ca)
        try:
            broker = gw.broker()
            host = pick_broker_host(gateway, broker_host, broker, BOARD)
            port = broker_port or int(broker.get("port") or 1883)
            ca = devconfig.ca_der(broker)
            creds = gw.provision(device, site, gate, mode, BOARD)
        finally:
            gw.close()
        m = creds["mqtt"]
        cfg = devconfig.build_config(
            placement, host, port, m["username"], m["password"], "", "", tls=bool(ca)
        )
        out.mkdir(parents=True, exist_ok=True)
        os.chmod(out, 0o700)
        if ca:
            _write_private(out / devconfig.CA_FILE, ca)  # first: the config names it
        _write_private(out / "config.json", devconfig.encode(cfg))
        if board_file is not None or not (out / "board.json").exists():
            shutil.copyfile(board_file or PI_PROFILE, out / "board.json")
        console.print(
            f"[bold green]Provisioned ✓[/] {device} at {site}: {out} (broker {host}:{port}"
            + (", TLS with the gateway's CA)" if ca else ")")
        )
