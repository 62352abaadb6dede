# Command line of the gateway: `run` starts everything and says where to look; `add-user`, `token`.
from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
import uvicorn
from pydantic import ValidationError
from rich.console import Console

from gateway.config import Settings
from gateway.domain.errors import HexiaoError
from gateway.entrypoints.http.app import create_app
from gateway.entrypoints.qr import terminal_qr, write_qr
from gateway.entrypoints.runtime import Runtime
from gateway.services.accounts import ensure_owner
from gateway.services.local_access import LOCAL_TOKEN_FILE

cli = typer.Typer(
    add_completion=False, help="Hexiao gateway: redeem online orders by scanning their QR code."
)
console = Console(stderr=True, soft_wrap=True)
# How to build the running gateway, handed over by the composition root: the CLI never imports it.
_builder: list[Callable[[Settings], Runtime]] = []


def start_cli(build: Callable[[Settings], Runtime]) -> None:
    """Run the command line with `build` as the way `run` starts the gateway."""
    _builder[:] = [build]
    cli()


@cli.callback()
def main() -> None:
    """Hexiao gateway."""


def _at_a_terminal() -> bool:
    """Both output streams are a real terminal. Not rich's `is_terminal`, which FORCE_COLOR (Docker,
    CI, systemd units that keep colours) turns on for a pipe into a log file."""
    return all(f is not None and f.isatty() for f in (sys.stdout, sys.stderr))


def banner(rt: Runtime, owner_password: str | None) -> None:
    s = rt.settings
    http = s.http_url
    console.rule("[bold]Hexiao gateway")
    console.print(f"  Web console         [bold cyan]{http}/console[/]")
    if owner_password and _at_a_terminal():
        # Only to a person at a terminal: a banner that lands in a log file must not carry the password.
        console.print(
            f"    first start: sign in as [bold]owner[/] with password [bold]{owner_password}[/]"
            f" (also in {s.var_dir / 'owner-password.txt'}, removed at the first sign-in)"
        )
    elif (s.var_dir / "owner-password.txt").exists():
        console.print(f"    sign in as owner; the first password is in {s.var_dir / 'owner-password.txt'}")
    console.print(f"  REST API docs       {http}/docs   health: {http}/api/health")
    console.print(f"  MQTT broker         [bold]{rt.mqtt_url}[/] ({rt.broker_kind})")
    lan = rt.fleet.broker if rt.fleet is not None else {}
    if lan.get("tls"):
        console.print(
            f"  Scanners (LAN)      TLS on {s.broker_bind}:{lan['port']}, per-device logins; "
            f"CA {s.var_dir / 'ca' / 'ca.pem'} (written to each board by tools.provision)"
        )
    console.print(f"  Database            {s.db_url}")
    if rt.broker_kind.startswith("demo"):
        console.print(
            "  [bold red]DEMO-ONLY broker[/]: install Mosquitto for real use (apt-get install mosquitto)"
        )
    if rt.demo_codes:
        console.print("\n  Demo orders (site [bold]demo[/]):")
        for code in rt.demo_codes:
            write_qr(code, s.var_dir / "qr")
            console.print(f"    {code}")
        first = rt.demo_codes[0]
        console.print(f"\n  QR codes as PNG/SVG in {s.var_dir / 'qr'}/ — here is {first}:")
        sys.stderr.write(terminal_qr(first))
    token_file = s.var_dir / LOCAL_TOKEN_FILE
    console.print(f"  Local token         {token_file} (the CLI and tools on this machine; keep it private)")
    console.print("\n  Try it:")
    console.print(
        f'    curl -s -X POST {http}/api/redeem -H "authorization: Bearer $(cat {token_file})" '
        "-H 'content-type: application/json' "
        '-d \'{"code": "HXDEMO-VIP-0001", "site": "demo", "request_id": "try-1"}\''
    )
    console.print(f"    .venv/bin/python -m tools.sim run --mqtt-url {rt.mqtt_url}   # a simulated scanner")
    console.print("  Ctrl-C stops everything; data stays in " + str(s.var_dir))
    console.rule()


@cli.command()
def run(
    http_host: str = typer.Option(None, help="address for the web console and API (env HTTP_HOST)"),
    http_port: int = typer.Option(None, help="port for the web console and API (env HTTP_PORT)"),
    no_demo: bool = typer.Option(False, "--no-demo", help="do not load demo data into an empty database"),
    var_dir: Path = typer.Option(None, help="data folder (env VAR_DIR, default ./var)"),
) -> None:
    """Start the gateway: database, MQTT broker (unless MQTT_URL is set), MQTT bridge, web console."""
    overrides: dict[str, object] = {}
    if http_host:
        overrides["http_host"] = http_host
    if http_port:
        overrides["http_port"] = http_port
    if no_demo:
        overrides["demo"] = False
    if var_dir:
        overrides["var_dir"] = var_dir
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as err:
        for e in err.errors():
            console.print(f"[red]setting {'.'.join(map(str, e['loc'])).upper()}: {e['msg']}[/]")
        raise typer.Exit(2) from err
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    def start() -> Runtime:
        try:
            rt = _builder[0](settings)
        except HexiaoError as err:
            console.print(f"[red]cannot start: {err.message}[/]")
            os._exit(2)
        banner(rt, ensure_owner(rt.db, settings.var_dir))
        rt.bridge.connected.wait(10)
        logging.getLogger("gateway").info("gateway ready on %s", settings.http_url)
        return rt

    app = create_app(start)
    # X-Forwarded-For/-Proto are believed only from TRUSTED_PROXIES (uvicorn's default would believe
    # anything on 127.0.0.1, i.e. any local process could pose as any client address).
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level="warning",
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=settings.trusted_proxies or "",
        **https(settings),
    )


def https(settings: Settings) -> dict[str, Any]:
    """uvicorn's TLS arguments for HTTPS=true: a certificate from the gateway's local CA (the one the
    scanners pin) for the HTTP address and BROKER_NAMES; nothing otherwise."""
    if not settings.https:
        return {}
    from datetime import UTC, datetime

    from gateway.adapters.brokers.tls_files import ensure_broker_tls, wanted_names

    names = wanted_names(settings.http_host, settings.extra_broker_names)
    files = ensure_broker_tls(
        settings.var_dir, settings.var_dir / "https", names, datetime.now(UTC), stem="https"
    )
    return {"ssl_certfile": str(files.certfile), "ssl_keyfile": str(files.keyfile)}


def _db_for_cli() -> Any:
    """The configured database, migrated: CLI commands work on the same data `run` uses."""
    from gateway.adapters.db.engine import make_engine, migrate
    from gateway.adapters.db.repositories.database import SqlDatabase

    settings = Settings()
    engine = make_engine(settings.db_url)
    migrate(engine)
    return SqlDatabase(engine)


@cli.command("add-user")
def add_user(
    name: str = typer.Argument(..., help="sign-in name"),
    role: str = typer.Option(..., help="owner, manager, supervisor or verifier"),
    site: list[str] = typer.Option([], help="site slug this person works at (repeat for several)"),
) -> None:
    """Create a person for the console; asks for the password (never pass it on the command line)."""
    from gateway.services.accounts import create_user

    password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        create_user(_db_for_cli(), name, password, role, list(site))
    except HexiaoError as err:
        console.print(f"[red]{err.message}[/]")
        raise typer.Exit(2) from err
    console.print(f"created {role} {name!r}")


@cli.command("token")
def token(
    user: str = typer.Argument(..., help="the person the token acts as"),
    name: str = typer.Option("integration", help="a label to tell tokens apart"),
) -> None:
    """Issue an API token (printed once on stdout; only its digest is stored)."""
    from gateway.services.accounts import issue_api_token

    try:
        value = issue_api_token(_db_for_cli(), user, name)
    except HexiaoError as err:
        console.print(f"[red]{err.message}[/]")
        raise typer.Exit(2) from err
    print(value)
