# What "no state change" means for the fuzzers: the ledger, order and device tables, read straight from the DB.
from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

TABLES = ("orders", "redemptions", "devices")


def digest(db: Path, tables: tuple[str, ...] = TABLES) -> dict[str, str]:
    """A hash of every row of each table (ordered by primary key): equal digests, equal tables."""
    c = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    out = {}
    try:
        for t in tables:
            rows = c.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall()  # noqa: S608 - our own names
            out[t] = f"{len(rows)}:" + hashlib.sha256(repr(rows).encode()).hexdigest()[:16]
    finally:
        c.close()
    return out
