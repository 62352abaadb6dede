# Builds the SQLAlchemy engine (SQLite in WAL with synchronous=FULL, or PostgreSQL) and applies migrations.
from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
MIGRATION_LOCK = 0x68786D67  # "hxmg": the advisory lock key under which migrations run on PostgreSQL


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers (REST, reports) run while the service loop writes; synchronous=FULL makes every
    # commit durable across power loss, which the "verdict only after a durable redemption" rule needs.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_engine(url: str) -> Engine:
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            private_file(Path(u.database))
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    # A central PostgreSQL across a WAN: without these a dead link blocks a connect or a statement for
    # as long as TCP keeps retrying (many minutes), and the service loop with it. With them a connect
    # gives up after 5 s and a link silent for 15 s fails the statement, which the caller redoes or
    # answers as an error. Each can be overridden in DATABASE_URL's query (`?connect_timeout=10`).
    return create_engine(url, pool_pre_ping=True, pool_size=10, connect_args=link_args(url))


def link_args(url: str | URL) -> dict[str, int]:
    """PG_LINK less what the URL's query sets itself (for every connection the gateway opens to
    PostgreSQL: the pool's, and the cache notices' listener of its own, adapters/db/notify.py)."""
    query = make_url(url).query
    return {k: v for k, v in PG_LINK.items() if k not in query}


PG_LINK: dict[str, int] = {
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 2,
    "tcp_user_timeout": 15000,  # ms: unacknowledged data for this long ends the connection
}


def private_file(db: Path) -> None:
    """The database (order codes are bearer credentials) readable by the gateway's user only: created
    0600 before SQLite opens it, so its -wal and -shm files, which SQLite gives the database's mode, are
    0600 too; an older world-readable file and its companions are tightened."""
    db.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(db, os.O_RDONLY | os.O_CREAT, 0o600))
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        try:
            os.chmod(path, 0o600)
        except FileNotFoundError:
            pass
        except PermissionError:  # another user's file: say so, the database still opens
            log.warning("cannot make %s private (mode 0600): it belongs to another user", path)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent; runs at every start)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Several workers start at once: one migrates, the others wait here and find it done. The
            # lock is the transaction's, so a worker killed mid-migration releases it with its rollback.
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _sqlite_begin(conn: Any) -> None:
    # pysqlite's own transaction handling is off (isolation_level=None) so that we choose how to begin:
    # writers ask for BEGIN IMMEDIATE, taking the write lock up front, so a read-then-write transaction
    # never fails with SQLITE_BUSY_SNAPSHOT; readers use a plain deferred BEGIN and never block writers.
    # Straight to the driver: through exec_driver_sql this one statement cost as much CPU as the rest of
    # a one-scan batch's SQL (measured); its errors are raised as SQLAlchemy's, like every statement's.
    sql = "BEGIN IMMEDIATE" if conn.get_execution_options().get("sqlite_immediate", False) else "BEGIN"
    try:
        conn.connection.dbapi_connection.execute(sql)
    except sqlite3.Error as err:
        raise DBAPIError.instance(sql, None, err, sqlite3.Error, dialect=conn.dialect) from err


def writer(conn: Any) -> Any:
    """Mark a connection as a writer (BEGIN IMMEDIATE on SQLite; no effect elsewhere)."""
    return conn.execution_options(sqlite_immediate=True)


# SQLite says "database or disk is full" (SQLITE_FULL); PostgreSQL raises class 53 (insufficient resources:
# disk full 53100, out of memory 53200). Recognised by text and SQLSTATE so the edge can say what happened.
_FULL_TEXT = ("database or disk is full", "no space left on device", "could not extend file")


def storage_full(err: BaseException) -> bool:
    """Whether `err` (or what it wraps) means the database's disk is full: nothing was written."""
    seen: BaseException | None = err
    for _ in range(4):
        if seen is None:
            return False
        if str(getattr(seen, "sqlstate", "") or "").startswith("531"):
            return True
        if any(t in str(seen).lower() for t in _FULL_TEXT):
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__
    return False
