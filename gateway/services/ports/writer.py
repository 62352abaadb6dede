# The hot path's writing connection: kept open across batches, one transaction per batch.
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from gateway.services.ports.database import Tx


class Writer(Protocol):
    """One connection, owned by the one thread that writes the ledger (services/group_commit.py).

    Why not `Database.write()`: that takes a pooled connection per transaction, and a batch of scans
    would pay the check-out (and PostgreSQL's liveness ping) each time; this one stays open until a
    failure drops it, and the next batch opens a new one."""

    @property
    def retryable(self) -> tuple[type[Exception], ...]:
        """What a batch may raise when simply redoing it can succeed: a key another writer recorded
        first, a busy or lost database."""
        ...

    @property
    def broken(self) -> tuple[type[Exception], ...]:
        """Those of `retryable` after which the connection is not to be used again (drop it)."""
        ...

    def batch(self) -> AbstractContextManager[Tx]:
        """A write transaction on the kept connection (opened first when there is none): committed
        when the block ends, rolled back when it raises."""
        ...

    def drop(self) -> None:
        """Close the connection (quietly: it may be broken already); the next batch opens a new one."""
        ...
