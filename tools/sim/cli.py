"""Command line of the device simulator: ``python -m tools.sim run|scan|show|hide|press|garbage|reboot|screen|screenshots``."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.panel import Panel

from tools.sim.control import ControlError, ControlServer, request
from tools.sim.fleet import Fleet, ScreenChange
from tools.sim.runner import DEFAULT_HEAP_K, Event, MqttTarget, SimError

app = typer.Typer(
    help="Hexiao device simulator: the real firmware on the MicroPython VM.", no_args_is_help=True
)
console = Console(highlight=False)

DEFAULT_OUT = Path("var/sim")
DEFAULT_MQTT = "mqtt://127.0.0.1:1884"

OutOpt = Annotated[
    Path, typer.Option("--out", help="Simulator state dir (flash, screens, logs, control socket).")
]
FirmwareOpt = Annotated[
    Path | None,
    typer.Option(
        help="Firmware dir holding main.py (default: firmware/ as source; build/firmware for .mpy)."
    ),
]
DeviceOpt = Annotated[str, typer.Option("--device", "-d", help="Device id, e.g. dev-1.")]

HELP = """Type a code and press Enter to scan it on the current device. Commands:
  :dev NAME      switch the current device        :press ok|up|down   press a button
  :reboot        power-cycle the current device   :garbage [N]        N noise bytes on the scanner UART
  :screen        show the current screen (+ PNG)  :help / :quit"""


def _fail(msg: str) -> None:
    console.print(f"[red]error:[/red] {msg}")
    raise typer.Exit(2)


def _show(name: str, item: ScreenChange | Event) -> None:
    if isinstance(item, ScreenChange):
        body = "\n".join(item.lines) if item.lines else "[dim](no text)[/dim]"
        console.print(Panel(body, title=f"{name} OLED", width=24 + len(name), expand=False))
        return
    kind = item.get("ev")
    if kind in ("buzzer", "relay", "button", "boot"):
        rest = {k: v for k, v in item.items() if k not in ("t", "ev")}
        console.print(f"[dim]{name}[/dim] [cyan]{kind}[/cyan] {rest}")


def _control_path(out: Path) -> Path:
    return out / "control.sock"


@app.command()
def run(
    devices: Annotated[int, typer.Option("--devices", "-n", min=1, max=16, help="How many devices.")] = 1,
    mqtt_url: Annotated[
        str, typer.Option("--mqtt-url", help="Broker the gateway listens on.")
    ] = DEFAULT_MQTT,
    site: Annotated[str, typer.Option(help="Site the devices belong to.")] = "demo",
    mode: Annotated[str, typer.Option(help="handheld or turnstile.")] = "handheld",
    out: OutOpt = DEFAULT_OUT,
    heap: Annotated[int, typer.Option(help="MicroPython heap per device, KiB.")] = DEFAULT_HEAP_K,
    firmware: FirmwareOpt = None,
    line_baud: Annotated[
        int, typer.Option(min=0, help="Deliver scanner bytes at this UART speed (0: instantly), e.g. 9600.")
    ] = 0,
    prompt: Annotated[bool, typer.Option("--prompt/--no-prompt", help="Interactive prompt on stdin.")] = True,
    pick: Annotated[
        bool,
        typer.Option("--pick", help="Handheld: show the order and pick the quantity (:press up/ok) first."),
    ] = False,
    camera: Annotated[
        bool,
        typer.Option(
            "--camera", help="Camera boards: `show CODE` puts a rendered QR in front of the camera."
        ),
    ] = False,
) -> None:
    """Start N real firmware instances against a running gateway and scan codes interactively."""
    try:
        fleet = Fleet(
            out,
            devices=devices,
            mqtt=MqttTarget.parse(mqtt_url),
            site=site,
            mode=mode,
            heap_k=heap,
            pick=pick,
            camera=camera,
        )
    except SimError as exc:
        _fail(str(exc))
        return
    server = ControlServer(_control_path(fleet.out), fleet.handle)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Ctrl-C stops it even when started from a shell that ignores SIGINT for background jobs (Python
    # then installs no KeyboardInterrupt handler of its own, and the simulator would never stop).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        fleet.start()
        server.start()
        fleet.subscribe(_show)
        names = ", ".join(f"{n} (UART {d.scanner.port})" for n, d in fleet.devices.items())
        console.print(f"[green]simulator running[/green]: {names}; broker {mqtt_url}; state in {fleet.out}")
        console.print(f"from another terminal: python -m tools.sim scan --out {out} --device dev-1 CODE")
        if prompt and sys.stdin.isatty():
            console.print(HELP)
            _prompt_loop(fleet, stop)
        else:
            stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        fleet.close()
        console.print("simulator stopped")


def _prompt_loop(fleet: Fleet, stop: threading.Event) -> None:
    current = next(iter(fleet.devices))
    while not stop.is_set():
        try:
            line = input(f"{current}> ").strip()
        except EOFError:
            return
        if not line:
            continue
        try:
            if not line.startswith(":"):
                wait = fleet[current].scanner.module.blocked_for(line, time.monotonic())
                if wait:
                    console.print(f"[dim]same code again: the scanner module waits {wait:.1f} s first[/dim]")
                resp = fleet.handle({"cmd": "scan", "device": current, "code": line})
                if not resp.get("sent"):
                    console.print(
                        "[yellow]the scanner did not emit the code (same-code delay or trigger mode)[/yellow]"
                    )
                continue
            cmd, _, arg = line[1:].partition(" ")
            arg = arg.strip()
            if cmd in ("q", "quit", "exit"):
                return
            if cmd == "help":
                console.print(HELP)
            elif cmd == "dev":
                fleet[arg]  # validates the name
                current = arg
            elif cmd == "press":
                fleet.handle({"cmd": "press", "device": current, "button": arg or "ok"})
            elif cmd == "reboot":
                fleet.handle({"cmd": "reboot", "device": current})
            elif cmd == "garbage":
                fleet.handle({"cmd": "garbage", "device": current, "bytes": int(arg or 512)})
            elif cmd == "screen":
                resp = fleet.handle({"cmd": "screen", "device": current})
                console.print("\n".join(resp["lines"]) or "(blank)", f"\nPNG: {resp['png']}")
            else:
                console.print(f"unknown command :{cmd} (try :help)")
        except (SimError, ValueError) as exc:
            console.print(f"[red]{exc}[/red]")


def _call(out: Path, payload: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
    try:
        resp = request(_control_path(out), payload, timeout=timeout)
    except ControlError as exc:
        _fail(str(exc))
        raise AssertionError("unreachable") from exc
    if not resp.get("ok"):
        _fail(str(resp.get("error")))
    return resp


@app.command()
def scan(
    code: Annotated[str, typer.Argument(help="What the scanner reads.")],
    device: DeviceOpt = "dev-1",
    out: OutOpt = DEFAULT_OUT,
    wait: Annotated[float, typer.Option(help="Seconds to wait for the verdict screen (0: don't).")] = 10.0,
) -> None:
    """Scan CODE on a device of a running simulator and print the verdict screen."""
    resp = _call(out, {"cmd": "scan", "device": device, "code": code, "wait": wait}, timeout=wait + 10)
    if not resp.get("sent"):
        console.print("[yellow]the scanner did not emit the code (same-code delay or trigger mode)[/yellow]")
    if wait:
        lines = resp.get("screen") or []
        console.print(Panel("\n".join(lines) or "(no change)", title=f"{device} OLED", expand=False))


@app.command()
def show(
    code: Annotated[str, typer.Argument(help="The order code whose QR the camera sees.")],
    device: DeviceOpt = "dev-1",
    out: OutOpt = DEFAULT_OUT,
) -> None:
    """Hold CODE's QR in front of a simulated camera board (tilted, blurred, noisy, JPEG); then press ok."""
    resp = _call(out, {"cmd": "show", "device": device, "code": code})
    console.print(f"{device} sees {code} ({resp['jpeg_bytes']} byte JPEG frames)")


@app.command()
def hide(device: DeviceOpt = "dev-1", out: OutOpt = DEFAULT_OUT) -> None:
    """Take the code away from a simulated camera board."""
    _call(out, {"cmd": "hide", "device": device})


@app.command()
def press(
    button: Annotated[str, typer.Argument(help="ok, up or down.")] = "ok",
    device: DeviceOpt = "dev-1",
    out: OutOpt = DEFAULT_OUT,
) -> None:
    """Press a button on a simulated device."""
    _call(out, {"cmd": "press", "device": device, "button": button})


@app.command()
def garbage(
    device: DeviceOpt = "dev-1",
    out: OutOpt = DEFAULT_OUT,
    size: Annotated[int, typer.Option("--bytes", help="How many noise bytes (0: the full mix).")] = 512,
) -> None:
    """Put noise on a device's scanner UART."""
    _call(out, {"cmd": "garbage", "device": device, "bytes": size})


@app.command()
def reboot(device: DeviceOpt = "dev-1", out: OutOpt = DEFAULT_OUT) -> None:
    """Power-cycle a simulated device (same flash)."""
    _call(out, {"cmd": "reboot", "device": device})


@app.command()
def screen(device: DeviceOpt = "dev-1", out: OutOpt = DEFAULT_OUT) -> None:
    """Print a device's current OLED text and write it as PNG."""
    resp = _call(out, {"cmd": "screen", "device": device})
    console.print(Panel("\n".join(resp["lines"]) or "(blank)", title=f"{device} OLED", expand=False))
    console.print(f"PNG: {resp['png']}")


@app.command()
def screenshots(
    dest: Annotated[Path, typer.Option("--dest", help="Where the PNGs go.")] = Path("docs/img"),
    work: Annotated[Path, typer.Option("--work", help="Scratch dir for gateway, broker and device.")] = Path(
        "var/screenshots"
    ),
    palette: Annotated[str, typer.Option(help="white, blue or yellow-blue.")] = "white",
    heap: Annotated[int, typer.Option(help="MicroPython heap, KiB.")] = DEFAULT_HEAP_K,
    firmware: FirmwareOpt = None,
    camera: Annotated[bool, typer.Option("--camera", help="Only the camera board's screens.")] = False,
) -> None:
    """Run a scenario against a real gateway + broker and write docs/img/oled-*.png."""
    from tools.sim.screenshots import run_scenario

    if camera:
        from tools.sim.camera_screens import run_camera_screens

        try:
            for path in run_camera_screens(dest, work, palette=palette, log=console.print):
                console.print(f"wrote {path}")
        except SimError as exc:
            _fail(str(exc))
        return
    try:
        written = run_scenario(dest, work, palette=palette, log=console.print, heap_k=heap, firmware=firmware)
    except SimError as exc:
        _fail(str(exc))
        return
    for path in written:
        console.print(f"wrote {path}")
