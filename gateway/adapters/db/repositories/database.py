# The unit of work over SQLAlchemy: one connection per transaction, its repositories made on first use.
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property

from sqlalchemy import Connection, Engine

from gateway.adapters.db.engine import writer
from gateway.adapters.db.repositories.accounts import SqlPeople, SqlSessions, SqlTokens
from gateway.adapters.db.repositories.audit import SqlAudit
from gateway.adapters.db.repositories.checkouts import SqlCheckouts
from gateway.adapters.db.repositories.credentials import SqlCredentials
from gateway.adapters.db.repositories.devices import SqlAlarms, SqlDevices
from gateway.adapters.db.repositories.ledger import SqlLedger
from gateway.adapters.db.repositories.orders import SqlOrders
from gateway.adapters.db.repositories.pins import SqlPins
from gateway.adapters.db.repositories.products import SqlProducts
from gateway.adapters.db.repositories.queries import SqlQueries
from gateway.adapters.db.repositories.redemption_log import SqlRedemptionLog
from gateway.adapters.db.repositories.reports import SqlReports
from gateway.adapters.db.repositories.sites import SqlSites
from gateway.adapters.db.repositories.webhook_events import SqlWebhookEvents


class SqlTx:
    """Implements services.ports.database.Tx: the repositories on one connection. A repository is made
    the first time a use case reaches for it, so a transaction pays only for the ones it uses."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @cached_property
    def alarms(self) -> SqlAlarms:
        return SqlAlarms(self.conn)

    @cached_property
    def audit(self) -> SqlAudit:
        return SqlAudit(self.conn)

    @cached_property
    def checkouts(self) -> SqlCheckouts:
        return SqlCheckouts(self.conn)

    @cached_property
    def credentials(self) -> SqlCredentials:
        return SqlCredentials(self.conn)

    @cached_property
    def devices(self) -> SqlDevices:
        return SqlDevices(self.conn)

    @cached_property
    def ledger(self) -> SqlLedger:
        return SqlLedger(self.conn)

    @cached_property
    def orders(self) -> SqlOrders:
        return SqlOrders(self.conn)

    @cached_property
    def people(self) -> SqlPeople:
        return SqlPeople(self.conn)

    @cached_property
    def pins(self) -> SqlPins:
        return SqlPins(self.conn)

    @cached_property
    def products(self) -> SqlProducts:
        return SqlProducts(self.conn)

    @cached_property
    def queries(self) -> SqlQueries:
        return SqlQueries(self.conn)

    @cached_property
    def redemption_log(self) -> SqlRedemptionLog:
        return SqlRedemptionLog(self.conn)

    @cached_property
    def reports(self) -> SqlReports:
        return SqlReports(self.conn)

    @cached_property
    def sessions(self) -> SqlSessions:
        return SqlSessions(self.conn)

    @cached_property
    def sites(self) -> SqlSites:
        return SqlSites(self.conn)

    @cached_property
    def tokens(self) -> SqlTokens:
        return SqlTokens(self.conn)

    @cached_property
    def webhook_events(self) -> SqlWebhookEvents:
        return SqlWebhookEvents(self.conn)


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
