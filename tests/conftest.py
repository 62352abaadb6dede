# Shared fixtures: a real Mosquitto on a free loopback port and real gateway processes.
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.adapters.brokers.mosquitto import Mosquitto, find_mosquitto
from gateway.services.local_access import read_local_token
from tests.helpers import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT / "contract"


def pytest_sessionstart(session: pytest.Session) -> None:
    if find_mosquitto() is None:
        # Not a skip: a missing broker means the set-up step failed, and the suite must say so loudly.
        raise pytest.UsageError(
            "mosquitto is not installed; run `make test` (it installs it) or apt-get install mosquitto"
        )


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(workdir=tmp_path / "broker")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def contract() -> Callable[[str], Any]:
    def load(name: str) -> Any:
        return json.loads((CONTRACT / name).read_text())

    return load


class GatewayProc:
    """`python -m gateway run` as a child process, as a user would start it."""

    def __init__(
        self, mqtt_url: str, db_path: Path, var_dir: Path, env: dict[str, str] | None = None
    ) -> None:
        self.mqtt_url = mqtt_url
        self.db_path = db_path
        self.var_dir = var_dir
        self.port = free_port()
        self.http = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ)
        self.env.update(
            {
                "MQTT_URL": mqtt_url,
                "DATABASE_URL": f"sqlite:///{db_path}",
                "VAR_DIR": str(var_dir),
                "HTTP_PORT": str(self.port),
                "DEMO": "false",
                "MQTT_CLIENT_ID": f"gw-{self.port}",
                # Test devices register themselves as they scan (unplaced unless a site `demo` exists),
                # as an operator's explicit AUTO_REGISTER_SITE does; the default (off) has its own test.
                "AUTO_REGISTER_SITE": "demo",
                "AUTO_REGISTER_PER_MIN": "0",
            }
        )
        self.env.update(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = var_dir / f"gateway-{self.port}.log"

    def start(self) -> GatewayProc:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run", "--no-demo"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=log,
        )
        log.close()

        def healthy() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"gateway exited: {self.log_path.read_text()[-2000:]}")
            try:
                return httpx.get(self.http + "/api/health", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(healthy, 90, "gateway health")  # an upper bound: a loaded 2-core CI box imports slowly
        return self

    def stop(self, hard: bool = False) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL if hard else signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self, hard: bool = False) -> None:
        self.stop(hard)
        self.start()

    @property
    def token(self) -> str:
        """The gateway's local token (VAR_DIR/local-token): how tools on its machine authenticate."""
        token = read_local_token(self.var_dir)
        assert token, f"no local token in {self.var_dir}"
        return token

    def api(self, method: str, path: str, *, local: bool = True, **kw: Any) -> httpx.Response:
        """A REST call; with `local` (and no credentials of its own) it carries the local token."""
        headers = dict(kw.pop("headers", None) or {})
        own = "cookies" in kw or any(k.lower() == "authorization" for k in headers)
        if local and not own:
            headers["Authorization"] = f"Bearer {self.token}"
        return httpx.request(method, self.http + path, timeout=15, headers=headers, **kw)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[Callable[..., GatewayProc]]:
    procs: list[GatewayProc] = []

    def make(mqtt_url: str, db_path: Path | None = None, env: dict[str, str] | None = None) -> GatewayProc:
        n = len(procs)
        g = GatewayProc(mqtt_url, db_path or tmp_path / f"gw{n}.db", tmp_path / f"gwvar{n}", env)
        procs.append(g)
        return g.start()

    yield make
    for g in procs:
        g.stop()


@pytest.fixture
def gateway(mosquitto: Mosquitto, gateway_factory: Callable[..., GatewayProc]) -> GatewayProc:
    """A gateway with one site `s1` (Asia/Shanghai) on its own broker, no demo data."""
    g = gateway_factory(mosquitto.url)
    assert g.api("POST", "/api/sites", json={"slug": "s1", "name": "Site One"}).status_code == 201
    return g


def wait_until(pred: Callable[[], Any], timeout: float = 15, what: str = "condition") -> Any:
    return wait_for(pred, timeout, what)


@pytest.fixture
def now() -> float:
    return time.time()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    from tests import pg

    with pg.server() as url:
        yield url


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    from tests import pg

    with pg.database(pg_server) as url:
        yield url
