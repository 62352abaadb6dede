# SQLite serves one gateway process: an exclusive lock file beside the database refuses a second one.
from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from sqlalchemy.engine import make_url

from gateway.domain.errors import ConfigError


def claim_sqlite(url: str) -> IO[bytes] | None:
    """Hold `<database>.lock` (flock, released by the kernel when the process dies, even by SIGKILL).

    Why a lock of our own: SQLite would let a second process open the file and both would answer the
    same devices with two writers and two brokers. The returned file must stay open for the process's
    life; None for PostgreSQL (any number of workers) and in-memory databases.
    """
    u = make_url(url)
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    path = Path(u.database).with_name(Path(u.database).name + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    f = open(path, "ab")  # noqa: SIM115 - held open on purpose until the process ends
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        raise ConfigError(
            f"another gateway process already serves {u.database}: SQLite is for one process. Stop it, "
            "or run several workers on PostgreSQL (WORKER_ID, DATABASE_URL=postgresql+psycopg://...; "
            "docs/scaling.md)"
        ) from None
    os.chmod(path, 0o600)
    return f
