# The unit of work over SQLAlchemy: one connection per transaction, its repositories made on first use.
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property

from sqlalchemy import Connection, Engine

from gateway.adapters.db.engine import writer
from gateway.adapters.db.repositories.checkouts import SqlCheckouts
from gateway.adapters.db.repositories.queries import SqlQueries
from gateway.adapters.db.repositories.redemption_log import SqlRedemptionLog
from gateway.adapters.db.repositories.reports import SqlReports
from gateway.adapters.db.repositories.sites import SqlSites


class SqlTx:
    """Implements services.ports.database.Tx: the repositories on one connection. A repository is made
    the first time a use case reaches for it, so a transaction pays only for the ones it uses."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @cached_property
    def sites(self) -> SqlSites:
        return SqlSites(self.conn)

    @cached_property
    def reports(self) -> SqlReports:
        return SqlReports(self.conn)

    @cached_property
    def redemption_log(self) -> SqlRedemptionLog:
        return SqlRedemptionLog(self.conn)

    @cached_property
    def checkouts(self) -> SqlCheckouts:
        return SqlCheckouts(self.conn)

    @cached_property
    def queries(self) -> SqlQueries:
        return SqlQueries(self.conn)


class SqlDatabase:
    """Implements services.ports.database.Database on an engine (the same transactions the services
    opened themselves before: `engine.connect()` to read, `writer(c).begin()` to write)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def read(self) -> Iterator[SqlTx]:
        with self.engine.connect() as c:
            yield SqlTx(c)

    @contextmanager
    def write(self) -> Iterator[SqlTx]:
        with self.engine.connect() as c, writer(c).begin():
            yield SqlTx(c)
