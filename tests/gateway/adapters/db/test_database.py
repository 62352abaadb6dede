# The unit of work: the repositories of one `write()` commit together, or not at all when the block raises.
from __future__ import annotations

import pytest

from gateway.adapters.db.repositories.database import SqlDatabase
from tests.gateway.adapters.db.site_rows import site_row


def test_a_write_commits_every_call_when_the_block_ends(db: SqlDatabase) -> None:
    with db.write() as tx:
        assert tx.sites.add(site_row("a")) and tx.sites.add(site_row("b"))
        assert set(tx.sites.ids()) == {"a", "b"}  # the same connection sees its own writes
    with db.read() as tx:
        assert set(tx.sites.ids()) == {"a", "b"}


def test_a_write_that_raises_leaves_nothing(db: SqlDatabase) -> None:
    with pytest.raises(RuntimeError), db.write() as tx:
        tx.sites.add(site_row("a"))
        raise RuntimeError("after the first insert")
    with db.read() as tx:
        assert tx.sites.ids() == {}


def test_a_transaction_makes_each_repository_once(db: SqlDatabase) -> None:
    with db.read() as tx:
        assert tx.sites is tx.sites
