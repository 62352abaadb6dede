# The unit of work: how a use case gets its repositories, all bound to one connection and one transaction.
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from gateway.services.ports.checkouts import Checkouts
from gateway.services.ports.queries import Queries
from gateway.services.ports.redemption_log import RedemptionLog
from gateway.services.ports.reports import Reports
from gateway.services.ports.sites import Sites


class Tx(Protocol):
    """The repositories of one transaction. Every repository reached through the same `Tx` shares its
    connection, so several calls (a check, then an insert) commit or roll back together."""

    @property
    def sites(self) -> Sites: ...

    @property
    def reports(self) -> Reports: ...

    @property
    def redemption_log(self) -> RedemptionLog: ...

    @property
    def checkouts(self) -> Checkouts: ...

    @property
    def queries(self) -> Queries: ...


class Database(Protocol):
    """Opens transactions. `read()`: a reading transaction (never blocks writers; nothing is committed).
    `write()`: a write transaction, committed when the `with` block ends normally and rolled back when
    it raises; on SQLite it takes the write lock up front, so a check-then-write cannot lose a race."""

    def read(self) -> AbstractContextManager[Tx]: ...

    def write(self) -> AbstractContextManager[Tx]: ...
