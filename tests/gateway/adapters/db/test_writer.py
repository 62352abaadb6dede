# The hot path's writer: one connection kept across batches, a raising batch rolled back, drop opens anew.
from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from gateway.adapters.db import hotsql
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.adapters.db.repositories.writer import SqlWriter


def _site(slug: str) -> dict[str, object]:
    return {"slug": slug, "name": slug, "timezone": "UTC", "auto_checkout": None, "created_at": 0.0}


def test_batches_share_one_connection_until_it_is_dropped(db: SqlDatabase) -> None:
    w = SqlWriter(db.engine)
    with w.batch() as first:
        first.sites.add(_site("a"))
    with w.batch() as second:
        assert second is first  # the same connection and repositories: nothing is built per batch
        second.sites.add(_site("b"))
    with pytest.raises(RuntimeError), w.batch() as tx:
        tx.sites.add(_site("c"))
        raise RuntimeError("poison")
    w.drop()
    w.drop()  # twice is harmless
    with w.batch() as third:
        assert third is not first
    with db.read() as tx:
        assert sorted(tx.sites.ids()) == ["a", "b"]  # committed at each block's end; "c" rolled back
    w.drop()


def test_what_a_batch_may_redo_and_when_the_connection_goes() -> None:
    w = SqlWriter.__new__(SqlWriter)
    assert issubclass(IntegrityError, w.retryable) and issubclass(OperationalError, w.retryable)
    assert issubclass(OperationalError, w.broken) and not issubclass(IntegrityError, w.broken)
    assert not issubclass(SQLAlchemyError, w.retryable)  # any other database error: the batch fails


def test_the_driver_level_statements_fail_as_sqlalchemy_errors(db: SqlDatabase) -> None:
    """The hot path's SQLite statements skip SQLAlchemy's execution layer; their failures must still
    be SQLAlchemy's, or a batch the writer should redo would be taken for one poison request."""
    w = SqlWriter(db.engine)
    row = {name: None for name in hotsql.REDEMPTION_FIELDS}
    row.update(idem_key="d:dev/1", device="dev", scan_id="1", gate="g", code="C", qty=1, direction="in",
               ok=False, reason="UNKNOWN_CODE", server_time=0.0, verdict="{}", op="redeem", undone=False,
               inside_delta=0)  # fmt: skip
    with pytest.raises(IntegrityError), w.batch() as tx:
        hotsql.insert_redemptions(tx.conn, [row, row])  # the same key twice: the unique index refuses
    w.drop()
    with db.read() as tx:
        assert tx.conn.exec_driver_sql("SELECT count(*) FROM redemptions").scalar() == 0


def test_begin_immediate_on_a_locked_database_is_an_operational_error(db: SqlDatabase) -> None:
    w = SqlWriter(db.engine)
    with w.batch() as tx:  # opens the connection the writer keeps; it waits no time for the lock
        tx.conn.connection.dbapi_connection.execute("PRAGMA busy_timeout=0")  # type: ignore[union-attr]
    holder = db.engine.raw_connection()
    holder.driver_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
    try:
        with pytest.raises(OperationalError), w.batch():
            pass
    finally:
        holder.driver_connection.execute("ROLLBACK")  # type: ignore[union-attr]
        holder.close()
        w.drop()
