# Disk footprint of a gateway database per table (rows, bytes with indexes): `python -m tools.loadgen.footprint URL`.
#
# Used for docs/scaling.md's "disk per year of ledger": run a load with --keep-workdir (SQLite) or against
# a PostgreSQL database, then divide the redemptions table's bytes by its rows.
from __future__ import annotations

import sqlite3
import sys

from sqlalchemy import create_engine, text

TABLES = ("redemptions", "orders", "audit", "devices")


def sqlite_sizes(path: str) -> dict[str, tuple[int, int]]:
    """table -> (rows, bytes of the table and its indexes), from SQLite's dbstat virtual table."""
    con = sqlite3.connect(path)
    try:
        owner = dict(con.execute("SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')"))
        size: dict[str, int] = {}
        for name, pgsize in con.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"):
            table = owner.get(name, name)
            size[table] = size.get(table, 0) + int(pgsize)
        out = {}
        for t in TABLES:
            if t in size:
                (rows,) = con.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()
                out[t] = (int(rows), size[t])
        return out
    finally:
        con.close()


def postgres_sizes(url: str) -> dict[str, tuple[int, int]]:
    """table -> (rows, pg_total_relation_size: heap + indexes + TOAST), after a VACUUM ANALYZE."""
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    out = {}
    with engine.connect() as conn:
        for t in TABLES:
            conn.execute(text(f'VACUUM ANALYZE "{t}"'))
            rows = conn.execute(text(f'SELECT COUNT(*) FROM "{t}"')).scalar_one()
            size = conn.execute(text("SELECT pg_total_relation_size(:t)"), {"t": t}).scalar_one()
            out[t] = (int(rows), int(size))
    engine.dispose()
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(
            "usage: python -m tools.loadgen.footprint sqlite:///path.db | postgresql://…/db", file=sys.stderr
        )
        return 2
    url = argv[0]
    sizes = sqlite_sizes(url.removeprefix("sqlite:///")) if url.startswith("sqlite:") else postgres_sizes(url)
    for t, (rows, size) in sizes.items():
        per = f"{size / rows:,.0f} bytes/row" if rows else "–"
        print(f"{t:12s} {rows:>9,} rows {size:>13,} bytes  {per}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
