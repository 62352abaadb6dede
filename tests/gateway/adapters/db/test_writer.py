# The hot path's writer: one connection kept across batches, a raising batch rolled back, drop opens anew.
from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

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
