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


@contextmanager
def _private_cluster() -> Iterator[str]:
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        raise RuntimeError(
            "PostgreSQL is not installed; `make test` installs it (apt-get install postgresql)"
        )
    bindir = os.path.dirname(bins[-1])
    root = tempfile.mkdtemp(prefix="hx-pg-")
    port = free_port()
    # PostgreSQL refuses to run as root: run it as the package's `postgres` user.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if as_user:
        shutil.chown(root, "postgres")
    data = os.path.join(root, "data")
    subprocess.run(
        [*as_user, f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "postgres"],
        check=True,
        capture_output=True,
    )
    opts = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=on"
    subprocess.run(
        [*as_user, f"{bindir}/pg_ctl", "-D", data, "-o", opts, "-l", f"{root}/log", "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        wait_for(lambda: _answers(url), 30, "private PostgreSQL")
        yield url
    finally:
        subprocess.run([*as_user, f"{bindir}/pg_ctl", "-D", data, "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


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
