# The database adapter tells a full disk from a bug: SQLite's SQLITE_FULL and PostgreSQL's class 53.
from __future__ import annotations

import sqlite3

import sqlalchemy.exc

from gateway.adapters.db.engine import storage_full


class _PgDiskFull(Exception):
    sqlstate = "53100"


def test_sqlite_full_wrapped_by_sqlalchemy_is_recognised() -> None:
    orig = sqlite3.OperationalError("database or disk is full")
    assert storage_full(sqlalchemy.exc.OperationalError("COMMIT", {}, orig))


def test_postgres_disk_full_by_sqlstate() -> None:
    assert storage_full(sqlalchemy.exc.OperationalError("INSERT", {}, _PgDiskFull("could not write")))


def test_other_errors_are_not_a_full_disk() -> None:
    assert not storage_full(
        sqlalchemy.exc.OperationalError("x", {}, sqlite3.OperationalError("database is locked"))
    )
    assert not storage_full(ValueError("boom"))
