# What "no state change" means for the fuzzers: the ledger, order and device tables, read straight from the DB.
from __future__ import annotations

import hashlib
from pathlib import Path

import sqlalchemy as sa

TABLES = ("orders", "redemptions", "devices")


def digest(db: Path, tables: tuple[str, ...] = TABLES) -> dict[str, str]:
    """A hash of every row of each table (ordered by primary key): equal digests, equal tables."""
    engine = sa.create_engine(f"sqlite:///{db}")
    out = {}
    try:
        with engine.connect() as c:
            for t in tables:
                rows = c.execute(sa.text(f"SELECT * FROM {t} ORDER BY 1")).all()  # noqa: S608 - our own names
                out[t] = f"{len(rows)}:" + hashlib.sha256(repr(rows).encode()).hexdigest()[:16]
    finally:
        engine.dispose()
    return out
