# The system under test for `make bench`: our own Mosquitto, the gateway as a subprocess, and its REST API.
from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from gateway.adapters.brokers.mosquitto import Mosquitto
from gateway.services.local_access import read_local_token

__all__ = [
    "GatewayProcess",
    "Mosquitto",
    "Rest",
    "TunedMosquitto",
    "env_pairs",
    "free_port",
    "require_loopback",
    "split_mqtt_url",
]


class BenchError(RuntimeError):
    """The benchmark could not set up or talk to the system under test."""


def env_pairs(items: Iterable[str]) -> dict[str, str]:
    """`--gateway-env K=V` options as a dict."""
    out = {}
    for item in items:
        k, sep, v = item.partition("=")
        if not sep or not k:
            raise BenchError(f"--gateway-env wants KEY=VALUE, got {item!r}")
        out[k] = v
    return out


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def require_loopback(host: str) -> None:
    """Load tests run against this machine only: refuse anything that does not resolve to loopback."""
    try:
        addrs = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError as e:
        raise BenchError(f"cannot resolve {host!r}: {e}") from e
    for a in addrs:
        if not ipaddress.ip_address(a.split("%")[0]).is_loopback:
            raise BenchError(
                f"{host!r} resolves to {a}, not loopback: the load generator only targets 127.0.0.1"
            )


def split_mqtt_url(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
        raise BenchError(f"MQTT URL must look like mqtt://127.0.0.1:1883, got {url!r}")
    return parts.hostname, parts.port or 1883


class TunedMosquitto(Mosquitto):
    """The gateway's Mosquitto config plus extra lines for a load scenario (e.g. `max_connections`)."""

    def __init__(self, *args: Any, extra: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.extra = tuple(extra)

    def write_config(self) -> None:
        super().write_config()
        if self.extra:
            with open(self.conf_path, "a") as f:
                f.write("\n".join(self.extra) + "\n")


class Rest:
    """The few REST calls the benchmark needs (stdlib only, JSON in and out)."""

    def __init__(self, base: str, timeout: float = 30.0, token: str | None = None) -> None:
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.token = token
        require_loopback(urlsplit(self.base).hostname or "")

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            detail = e.read()[:500].decode(errors="replace")
            raise BenchError(f"{method} {path} -> HTTP {e.code}: {detail}") from e

    def health(self) -> dict[str, Any] | None:
        try:
            got = self._call("GET", "/api/health")
        except (OSError, BenchError):
            return None
        return got if isinstance(got, dict) else None

    def create_orders(self, codes: Iterable[str], quantity: int, title: str = "Load test") -> None:
        batch = [
            {
                "code": c,
                "title": title,
                "quantity": quantity,
                "site": None,
                "valid_from": None,
                "valid_until": None,
            }
            for c in codes
        ]
        for i in range(0, len(batch), 500):
            self._call("POST", "/api/orders", {"orders": batch[i : i + 500]})

    def order(self, code: str) -> dict[str, Any]:
        got = self._call("GET", f"/api/orders/{quote(code, safe='')}")
        if not isinstance(got, dict):
            raise BenchError(f"GET /api/orders/{code} returned {got!r}")
        return got

    def ok_redemptions_between(self, since: float, until: float) -> int:
        """How many successful redemption records the ledger holds with a server time in [since, until)."""
        got = self._call("GET", f"/api/redemptions?ok=true&since={since:.6f}&until={until:.6f}&limit=1")
        if not isinstance(got, dict) or not isinstance(got.get("total"), int):
            raise BenchError(f"GET /api/redemptions returned no total: {str(got)[:200]}")
        return int(got["total"])

    def used(self, code: str) -> int:
        """Units redeemed on an order so far, as the ledger has it."""
        o = self.order(code)
        if "used" in o:
            return int(o["used"])
        return int(o["quantity"]) - int(o["left"])


class GatewayProcess:
    """`python -m gateway run --no-demo` as a child process with its own SQLite file and HTTP port."""

    def __init__(self, mqtt_url: str, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.workdir = Path(workdir)
        self.mqtt_url = mqtt_url
        self.http_port = free_port()
        self.db_path = self.workdir / "bench.db"
        self.log_path = self.workdir / "gateway.log"
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def token(self) -> str | None:
        """The gateway's local token (VAR_DIR/local-token): how this tool authenticates its REST calls."""
        return read_local_token(self.workdir / "var")

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def start(self, timeout: float = 60.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update(
            {
                "MQTT_URL": self.mqtt_url,
                "DATABASE_URL": f"sqlite:///{self.db_path}",
                "HTTP_HOST": "127.0.0.1",
                "HTTP_PORT": str(self.http_port),
                "VAR_DIR": str(self.workdir / "var"),
                "DEMO": "false",
            }
        )
        env.update(self.extra_env)
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "run", "--no-demo", "--http-port", str(self.http_port)],
                stdout=logf,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        rest = Rest(self.http, timeout=2.0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"gateway exited at start (code {self.proc.returncode}):\n{self.log_tail()}")
            h = rest.health()
            if h and h.get("ok") and (h.get("mqtt") or {}).get("connected"):
                return
            time.sleep(0.1)
        self.stop()
        raise BenchError(f"gateway not healthy within {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(5)
        self.proc = None
