# A PostgreSQL for tests: the local server when one answers, else a private cluster from Debian's binaries.
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from gateway.adapters.brokers.mosquitto import free_port
from tests.helpers import wait_for

LOCAL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


class Cluster:
    """A private PostgreSQL cluster (initdb in a temp dir, a free port) this test run owns: it may be
    stopped, crashed and restarted (the fault suite) without touching the machine's shared server."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not bins:
            raise RuntimeError(
                "PostgreSQL is not installed; `make test` installs it (apt-get install postgresql)"
            )
        self.bindir = os.path.dirname(bins[-1])
        self.root = tempfile.mkdtemp(prefix="hx-pg-")
        self.port = free_port()
        # PostgreSQL refuses to run as root: run it as the package's `postgres` user.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.root, "postgres")
        self.data = os.path.join(self.root, "data")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        subprocess.run(
            [*self.as_user, f"{self.bindir}/initdb", "-D", self.data, "-A", "trust", "-U", "postgres"],
            check=True,
            capture_output=True,
        )

    def _ctl(self, *args: str) -> None:
        subprocess.run([*self.as_user, f"{self.bindir}/pg_ctl", "-D", self.data, *args], capture_output=True)

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=on"
        self._ctl("-o", opts, "-l", f"{self.root}/log", "-w", "start")
        wait_for(lambda: _answers(self.url), 30, "private PostgreSQL")

    def stop(self, mode: str = "fast") -> None:
        """`fast`: a clean shutdown; `immediate`: a crash (no checkpoint, recovery at the next start)."""
        self._ctl("-m", mode, "-w", "stop")

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def _private_cluster() -> Iterator[str]:
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster.url
    finally:
        cluster.remove()


@contextmanager
def server() -> Iterator[str]:
    """Admin URL of a PostgreSQL server: HX_TEST_PG_URL, the local one, or a private cluster."""
    url = os.environ.get("HX_TEST_PG_URL", "")
    if url:
        yield url
    elif _answers(LOCAL):
        yield LOCAL
    else:
        with _private_cluster() as u:
            yield u


@contextmanager
def database(admin_url: str) -> Iterator[str]:
    """A fresh, uniquely named database, dropped afterwards; yields its SQLAlchemy URL."""
    name = "hx_test_" + uuid.uuid4().hex[:10]
    with psycopg.connect(admin_url, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0]
    try:
        yield f"postgresql+psycopg://{base.split('://', 1)[1]}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
