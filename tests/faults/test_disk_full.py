# Disk full under the SQLite file (a small tmpfs this test mounts): a clear error, no corrupt ledger, recovery.
from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from gateway.adapters.brokers.mosquitto import Mosquitto
from tests.conftest import GatewayProc
from tests.faults.conftest import Scale
from tests.faults.harness import OpenLoad
from tests.faults.steps import FAULT_ENV, finish, make_orders
from tests.helpers import wait_for


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 24 MB tmpfs of our own (root only: mounting needs CAP_SYS_ADMIN), always unmounted."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        raise AssertionError("the disk-full test mounts a tmpfs and must run as root (CI does)")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0755", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(path: Path) -> int:
    """Write until the file system says ENOSPC; returns the bytes written."""
    n = 0
    chunk = b"\0" * 65536
    with path.open("wb", buffering=0) as f:
        while True:
            try:
                n += f.write(chunk)
            except OSError:
                break
    with contextlib.suppress(OSError), path.open("ab", buffering=0) as f:
        while True:
            f.write(b"\0" * 512)
    return n


def _write_until_refused(gw: GatewayProc) -> tuple[int, dict[str, object]]:
    """Create orders over REST until the full disk refuses one batch (SQLite first fills the free pages of
    its file and its WAL, so the first writes after ENOSPC may well succeed); bounded to 100 batches."""
    r = None
    for n in range(100):
        batch = [
            {
                "code": f"dsk-fill-{n}-{i}",
                "title": "t" * 200,
                "quantity": 1,
                "site": None,
                "valid_from": None,
                "valid_until": None,
            }
            for i in range(200)
        ]
        r = gw.api("POST", "/api/orders", json={"orders": batch})
        if r.status_code != 201:
            break
    assert r is not None
    return r.status_code, r.json()


def integrity(db: Path) -> str:
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        return str(c.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        c.close()


def test_disk_full_under_the_ledger(
    mosquitto: Mosquitto,
    gateway_factory: Callable[..., GatewayProc],
    chaos: Scale,
    small_disk: Path,
) -> None:
    gw = gateway_factory(mosquitto.url, db_path=small_disk / "ledger.db", env=dict(FAULT_ENV))
    codes = make_orders(gw, "dsk", 20, quantity=max(3, int(chaos.rate * chaos.load_s) // 40))
    load = OpenLoad(mosquitto.host, mosquitto.port, codes, rate=chaos.rate, tag="d")
    filler = small_disk / "filler"
    t0 = time.monotonic()
    try:
        load.start(chaos.load_s)
        time.sleep(chaos.load_s / 4)
        filled = fill(filler)
        full_at = time.monotonic()
        # While full: the gateway stays up, answers scans with a transient INTERNAL (kept and resent by the
        # device), refuses a write over REST in the one error shape, and the ledger file stays sound.
        wait_for(
            lambda: sum(d.transients for d in load.devs) > 0, 30, "a transient answer while the disk is full"
        )
        rest_status, rest_body = _write_until_refused(gw)
        assert integrity(small_disk / "ledger.db") == "ok"
        time.sleep(max(0.0, chaos.load_s / 4 - (time.monotonic() - full_at)))
        alive_while_full = gw.proc is not None and gw.proc.poll() is None
        filler.unlink()  # space returns
        proof = finish(
            "disk_full", load, f"sqlite:///{gw.db_path}", t0, filled_bytes=filled, rest_status=rest_status
        )
    finally:
        load.close()
        with contextlib.suppress(FileNotFoundError):
            filler.unlink()
    assert alive_while_full, f"the gateway died when the disk filled: {gw.log()[-2000:]}"
    assert rest_status == 503 and set(rest_body) == {"error"}, (rest_status, rest_body)
    assert "disk" in rest_body["error"]["message"].lower(), rest_body
    assert proof.sent > 0 and proof.answered == proof.sent
    proof.assert_clean()
    gw.stop()
    assert integrity(small_disk / "ledger.db") == "ok"
