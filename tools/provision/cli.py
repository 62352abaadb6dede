# The provisioning command line (typer + rich): ports, flash, install, verify, backup, restore.
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import typer
from rich.table import Table

from tools.provision import devconfig, flashing
from tools.provision.build import FIRMWARE, build
from tools.provision.checks import board_profile, current_config, wait_online
from tools.provision.checks import broker_host as pick_broker_host
from tools.provision.device import Device
from tools.provision.errors import DeviceError, UsageError
from tools.provision.gwclient import Gateway
from tools.provision.options import BrokerHostOpt, BrokerPortOpt, GatewayCaOpt, GatewayOpt, PortOpt, TokenOpt
from tools.provision.ports import list_serial_ports
from tools.provision.ui import Steps, console, reporting

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help=(
        "Turn a blank ESP32 into a Hexiao scanner over USB.\n\n"
        "Usual order: `ports` (find the board), `flash` (once per board: MicroPython), `install` "
        "(firmware + settings + login, then checks it comes online). Secrets are never printed."
    ),
)


# -- ports ----------------------------------------------------------------------------------------------
@app.command()
def ports(
    all_ports: bool = typer.Option(False, "--all", help="also list built-in serial ports (ttyS*)"),
) -> None:
    """List USB serial ports and what is probably plugged into each (guessed from the USB id)."""
    found = [p for p in list_serial_ports() if all_ports or p.vid is not None]
    if not found:
        console.print(
            "No serial ports found. Plug the board in with a data USB cable (some cables only charge)."
        )
        console.print("On Linux, a CH340/CP210x board shows up as /dev/ttyUSB0 or /dev/ttyACM0.")
        raise typer.Exit(1)
    table = Table("port", "USB id", "probably", "description")
    for p in found:
        table.add_row(p.device, p.vid_pid, p.guess or "[dim]not an ESP32 bridge we know[/]", p.description)
    console.print(table)


# -- flash ----------------------------------------------------------------------------------------------
@app.command()
def flash(
    port: str = PortOpt,
    firmware: Path = typer.Option(
        ..., "--firmware", "-f", help="MicroPython .bin for your chip (downloaded by you)"
    ),
    baud: int = typer.Option(460800, help="flashing speed; try 115200 with long or poor cables"),
    erase: bool = typer.Option(True, "--erase/--no-erase", help="erase the whole flash first (recommended)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="check the file and the chip, write nothing"),
) -> None:
    """Put MicroPython on the board with esptool (erase + write). Never downloads anything itself."""
    with reporting():
        steps = Steps(2 if dry_run else 3)
        image = steps.run(
            "Checking the firmware file",
            lambda: flashing.check_image(firmware),
            lambda im: f"{im.path.name}, {im.size // 1024} KiB, for {im.chip or 'an unknown chip'}",
        )
        chip = steps.run("Detecting the chip", lambda: flashing.detect_chip(port), lambda c: c.upper())
        commands = flashing.plan(image, chip, port, baud, erase)
        if dry_run:
            for c in commands:
                console.print("  would run: esptool " + " ".join(c))
            console.print("Dry run: nothing was written.")
            return

        def write() -> None:
            for c in commands:
                res = flashing.esptool(*c)
                if res.returncode != 0:
                    raise DeviceError(
                        f"esptool {c[6]} failed: {flashing.esptool_error(res)}",
                        "try again with --baud 115200",
                    )

        steps.run("Erasing and writing MicroPython" if erase else "Writing MicroPython", write)
        console.print(f"[bold green]MicroPython is on the board[/] ({steps.elapsed:.0f} s). Next: install.")


# -- install --------------------------------------------------------------------------------------------
@app.command()
def install(
    port: str = PortOpt,
    device: str = typer.Option(..., "--device", "-d", help="device id, e.g. gate-3 (also its MQTT login)"),
    site: str = typer.Option(..., "--site", "-s", help="site slug the device belongs to"),
    gate: str = typer.Option("", "--gate", "-g", help="name shown on the device, e.g. 'Gate 3'"),
    mode: str = typer.Option("handheld", "--mode", "-m", help="handheld or turnstile"),
    board: str = typer.Option("esp32-devkitc", "--board", "-b", help="board profile (hardware/boards/)"),
    pick: bool = typer.Option(
        True,
        "--pick/--no-pick",
        help="handheld: show the order and let staff pick the quantity before redeeming",
    ),
    turn_sensor: bool = typer.Option(
        False, "--turn-sensor", help="turnstile: a sensor reports each turn; an OK nobody passed is annulled"
    ),
    wifi_ssid: str = typer.Option("", "--wifi-ssid", envvar="HX_WIFI_SSID", help="shop WiFi name"),
    wifi_password: str = typer.Option(
        None, "--wifi-password", envvar="HX_WIFI_PASSWORD", help="shop WiFi password (asked for when missing)"
    ),
    gateway: str = GatewayOpt,
    gateway_ca: Path = GatewayCaOpt,
    token: str = TokenOpt,
    broker_host: str = BrokerHostOpt,
    broker_port: int = BrokerPortOpt,
    firmware_dir: Path = typer.Option(FIRMWARE, help="firmware source folder"),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="wait until the device is online"),
    timeout: float = typer.Option(90.0, help="seconds to wait for the device to come online"),
    dry_run: bool = typer.Option(False, "--dry-run", help="show what would happen; change nothing"),
) -> None:
    """Install the firmware, register the device at the gateway (fresh login) and write its settings.

    Running it again on a provisioned board re-installs it and rotates its login (the old one stops
    working at once). Scans still waiting on the board are kept.
    """
    with reporting():
        placement = devconfig.Placement(device, site, gate, mode, board, pick, turn_sensor)
        placement.check()
        profile = board_profile(board)
        needs_wifi = profile is not None
        if needs_wifi and not wifi_ssid:
            raise UsageError("--wifi-ssid is required for a WiFi board", "or set HX_WIFI_SSID")
        if needs_wifi and wifi_password is None and not dry_run:
            wifi_password = typer.prompt(f"Password of WiFi {wifi_ssid!r}", hide_input=True)
        gw = Gateway(gateway, token, ca=gateway_ca)
        dev = Device(port)
        staging = Path(tempfile.mkdtemp(prefix="hx-build-"))
        steps = Steps(5 if dry_run else (8 if verify else 6))
        try:
            steps.run(
                "Checking the board",
                dev.info,
                lambda i: f"{i['impl']} {i['version']} on {i['platform']} ({i['machine']})",
            )
            current = current_config(dev)
            if current and current.get("device") not in (None, device):
                console.print(
                    f"[yellow]! The board was provisioned as {current.get('device')!r}; it becomes {device!r}. "
                    f"The old name keeps its login until you revoke it (fleet: revoke).[/]"
                )
            built = steps.run(
                "Compiling the firmware",
                lambda: build(staging / "fw", firmware_dir, board),
                lambda b: f"{b.files} files, {b.size // 1024} KiB, build {b.digest}",
            )
            broker = steps.run(
                "Contacting the gateway",
                gw.broker,
                lambda b: (
                    f"{gateway}, devices log in: {'yes' if b.get('device_auth') else 'no (open broker)'}"
                    + (", TLS with the gateway's CA" if b.get("tls") else "")
                ),
            )
            host = pick_broker_host(gateway, broker_host, broker, board)
            port_ = broker_port or int(broker.get("port") or 1883)
            ca = devconfig.ca_der(broker)
            addr = devconfig.broker_addr(host)  # a name is looked up now, never on the device's loop
            if dry_run:
                cfg = devconfig.build_config(
                    placement,
                    host,
                    port_,
                    device,
                    "(new secret)",
                    wifi_ssid,
                    wifi_password or "",
                    tls=bool(ca),
                    addr=addr,
                )
                steps.run("Planning", lambda: None)
                steps.run("Nothing written (dry run)", lambda: None)
                console.print("Would upload firmware build " + built.digest + " and write config.json:")
                console.print_json(data=devconfig.masked(cfg))
                console.print(
                    "Would register "
                    + device
                    + (" (rotating its login)" if current else "")
                    + " at the gateway."
                )
                return
            steps.run("Uploading the firmware", lambda: dev.install_tree(built.staging))
            before = gw.device(device) if verify else None
            creds = steps.run(
                "Registering at the gateway",
                lambda: gw.provision(device, site, gate, mode, board),
                lambda c: (
                    f"login generation {c['generation']}" + (" (old login revoked)" if c["rotated"] else "")
                ),
            )
            m = creds["mqtt"]
            cfg = devconfig.build_config(
                placement,
                host,
                port_,
                m["username"],
                m["password"],
                wifi_ssid,
                wifi_password or "",
                tls=bool(ca),
                addr=addr,
                ota_key=creds.get("ota_key"),
            )

            payload = devconfig.encode(cfg)
            del cfg, creds, m  # from here on the secret lives on the device only

            def write_and_reset() -> None:
                if ca:
                    dev.write_file(ca, devconfig.CA_FILE)  # first: the config names it
                dev.write_file(payload, "config.json")
                dev.reset()

            steps.run(
                "Writing settings and restarting",
                write_and_reset,
                lambda _: f"broker {host}:{port_}{' (TLS, gateway CA)' if ca else ''}, site {site}, {mode}",
            )
            if verify:
                wait_online(steps, gw, device, before, timeout)
        finally:
            gw.close()
            shutil.rmtree(staging, ignore_errors=True)
        console.print(
            f"[bold green]Provisioned ✓[/] {device} at {site} in {steps.elapsed:.1f} s"
            + ("" if verify else " (not verified)")
        )


# -- verify ---------------------------------------------------------------------------------------------
@app.command("verify")
def verify_cmd(
    device: str = typer.Option(..., "--device", "-d", help="device id"),
    gateway: str = GatewayOpt,
    gateway_ca: Path = GatewayCaOpt,
    token: str = TokenOpt,
    timeout: float = typer.Option(90.0, help="seconds to wait for the device"),
) -> None:
    """Wait until the device is online at the gateway, then make it beep and show 'Provisioned'."""
    with reporting():
        gw = Gateway(gateway, token, ca=gateway_ca)
        steps = Steps(2)
        try:
            if gw.device(device) is None:
                raise UsageError(f"the gateway does not know {device!r}", "provision it with `install` first")
            wait_online(steps, gw, device, None, timeout)
        finally:
            gw.close()
        console.print(f"[bold green]Provisioned ✓[/] {device} answered in {steps.elapsed:.1f} s")


# -- backup / restore -----------------------------------------------------------------------------------
@app.command()
def backup(
    port: str = PortOpt,
    out: Path = typer.Option(..., "--out", "-o", help="file to save the board's config.json to"),
) -> None:
    """Save the board's settings (config.json) to a private file (it holds the device's secrets)."""
    with reporting():
        raw = Device(port).read_file("config.json")
        if raw is None:
            raise DeviceError("the board has no config.json", "it has not been provisioned yet")
        doc = json.loads(raw)
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.chmod(out, 0o600)
        console.print(
            f"[green]✓[/] saved the settings of {doc.get('device')!r} to {out} (readable by you only)"
        )
        console.print_json(data=devconfig.masked(doc))


@app.command()
def restore(
    port: str = PortOpt,
    file: Path = typer.Option(..., "--file", "-f", help="a config.json saved by `backup`"),
    reset: bool = typer.Option(True, "--reset/--no-reset", help="restart the board afterwards"),
    dry_run: bool = typer.Option(False, "--dry-run", help="check the file only"),
) -> None:
    """Write a saved config.json back to the board (e.g. onto a replacement board)."""
    with reporting():
        try:
            doc = json.loads(file.read_bytes())
        except (OSError, ValueError) as err:
            raise UsageError(f"cannot read {file}: {err}") from err
        devconfig.check_config(doc)
        if dry_run:
            console.print_json(data=devconfig.masked(doc))
            console.print("Dry run: the file is valid; nothing was written.")
            return
        dev = Device(port)
        dev.write_file(devconfig.encode(doc), "config.json")
        if reset:
            dev.reset()
        console.print(
            f"[green]✓[/] restored the settings of {doc['device']!r}" + (" and restarted" if reset else "")
        )


# -- linux ----------------------------------------------------------------------------------------------
from tools.provision.linux import linux as _linux  # noqa: E402  (its own module: this one is long enough)

app.command("linux")(_linux)
