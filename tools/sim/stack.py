"""A throw-away local stack for scripted scenarios: our own Mosquitto plus ``python -m gateway run``.

Used by ``python -m tools.sim screenshots``; tests use the pytest fixtures instead.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from gateway.adapters.brokers.mosquitto import Mosquitto
from gateway.services.local_access import read_local_token
from tools.sim.paths import ROOT
from tools.sim.runner import MqttTarget, SimError, wait_until


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalStack:
    """Mosquitto on a free port + a demo-less gateway with a fresh SQLite database in ``work``."""

    def __init__(self, work: Path) -> None:
        self.work = Path(work).resolve()
        self.work.mkdir(parents=True, exist_ok=True)
        self.broker = Mosquitto(workdir=self.work / "broker")
        self.http_port = _free_port()
        self.http = f"http://127.0.0.1:{self.http_port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.work / "gateway.log"

    @property
    def mqtt(self) -> MqttTarget:
        return MqttTarget(self.broker.host, self.broker.port)

    def start(self) -> LocalStack:
        db = self.work / "hexiao.db"
        for stale in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
            stale.unlink(missing_ok=True)  # every scenario starts from an empty ledger
        self.broker.start()
        env = dict(os.environ)
        env.update(
            {
                "MQTT_URL": self.broker.url,
                "DATABASE_URL": f"sqlite:///{db}",
                "VAR_DIR": str(self.work / "var"),
                "HTTP_PORT": str(self.http_port),
                "DEMO": "false",
                "AUTO_REGISTER_SITE": "demo",  # simulated scanners register themselves at the demo site
                "MQTT_CLIENT_ID": f"gw-sim-{self.http_port}",
            }
        )
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "run", "--no-demo"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until(self._healthy, 60, "gateway health")
        except BaseException:
            self.stop()  # never leave a broker or a half-started gateway behind
            raise
        return self

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise SimError(f"gateway exited:\n{self.log_path.read_text(errors='replace')[-2000:]}")
        try:
            return bool(self.api("GET", "/api/health").get("ok"))
        except (OSError, SimError):
            return False

    def api(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.http + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        token = read_local_token(self.work / "var")  # the gateway's local credential (0600)
        if token:
            req.add_header("authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                out: dict[str, Any] = json.loads(resp.read() or b"{}")
                return out
        except urllib.error.HTTPError as exc:
            raise SimError(f"{method} {path}: HTTP {exc.code} {exc.read()[:300]!r}") from exc

    def ensure_site(self, slug: str = "demo", name: str = "Demo venue") -> None:
        try:
            self.api("POST", "/api/sites", {"slug": slug, "name": name})
        except SimError as exc:
            if "409" not in str(exc):
                raise

    def create_orders(self, orders: list[dict[str, Any]]) -> None:
        full = [{"site": None, "valid_from": None, "valid_until": None, **o} for o in orders]
        self.api("POST", "/api/orders", {"orders": full})

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.broker.stop()

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)
