# The unit of work: how a use case gets its repositories, all bound to one connection and one transaction.
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from gateway.services.ports.accounts import People, Sessions, Tokens
from gateway.services.ports.alarms import Alarms
from gateway.services.ports.audit import Audit
from gateway.services.ports.checkouts import Checkouts
from gateway.services.ports.credentials import DeviceCredentials
from gateway.services.ports.devices import Devices
from gateway.services.ports.ledger import Ledger
from gateway.services.ports.orders import Orders
from gateway.services.ports.pins import Pins
from gateway.services.ports.products import Products
from gateway.services.ports.queries import Queries
from gateway.services.ports.redemption_log import RedemptionLog
from gateway.services.ports.reports import Reports
from gateway.services.ports.sites import Sites
from gateway.services.ports.webhook_events import WebhookEvents


class Tx(Protocol):
    """The repositories of one transaction. Every repository reached through the same `Tx` shares its
    connection, so several calls (a check, then an insert) commit or roll back together."""

    @property
    def alarms(self) -> Alarms: ...

    @property
    def audit(self) -> Audit: ...

    @property
    def checkouts(self) -> Checkouts: ...

    @property
    def credentials(self) -> DeviceCredentials: ...

    @property
    def devices(self) -> Devices: ...

    @property
    def ledger(self) -> Ledger: ...

    @property
    def orders(self) -> Orders: ...

    @property
    def people(self) -> People: ...

    @property
    def pins(self) -> Pins: ...

    @property
    def products(self) -> Products: ...

    @property
    def queries(self) -> Queries: ...

    @property
    def redemption_log(self) -> RedemptionLog: ...

    @property
    def reports(self) -> Reports: ...

    @property
    def sessions(self) -> Sessions: ...

    @property
    def sites(self) -> Sites: ...

    @property
    def tokens(self) -> Tokens: ...

    @property
    def webhook_events(self) -> WebhookEvents: ...


class Database(Protocol):
    """Opens transactions. `read()`: a reading transaction (never blocks writers; nothing is committed).
    `write()`: a write transaction, committed when the `with` block ends normally and rolled back when
    it raises; on SQLite it takes the write lock up front, so a check-then-write cannot lose a race."""

    def read(self) -> AbstractContextManager[Tx]: ...

    def write(self) -> AbstractContextManager[Tx]: ...
