# Inbound shop webhooks: every line of a shop order becomes its own order, unpaid orders wait for payment.
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, insert, select

from gateway.adapters.db.models import Order, WebhookEvent
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.adapters.db.repositories.ledger import SqlLedger
from gateway.domain.decisions import Ask, decide
from gateway.domain.errors import Conflict
from gateway.services import webhooks_in as inbound
from gateway.services.catalog import ProductIn, create_product
from gateway.services.orders import SiteIn, create_site
from tests.gateway.trust_fixtures import ledger

SECRET = "test-webhook-secret-0123456789"


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Engine]:
    e = ledger(request.param, tmp_path, request)
    create_site(SqlDatabase(e), SiteIn(slug="demo", name="Demo", timezone="Asia/Shanghai"))
    yield e
    e.dispose()


def event(eid: str, kind: str, data: dict[str, Any], created: float | None = None) -> inbound.Envelope:
    body = json.dumps({"id": eid, "type": kind, "created": created or time.time(), "data": data}).encode()
    return inbound.parse(body)


def handle(e: Engine, ev: inbound.Envelope) -> dict[str, Any]:
    return inbound.handle(SqlDatabase(e), ev, None, time.time(), secret=SECRET)


def orders(e: Engine, external_ref: str) -> list[Any]:
    with e.connect() as c:
        return list(
            c.execute(
                select(*Order.__table__.c).where(Order.external_ref == external_ref).order_by(Order.code)
            )
        )


def crashed(e: Engine, eid: str, kind: str) -> None:
    """An event claimed by a delivery that died before recording it (its claim is old)."""
    with e.connect() as c, c.begin():
        c.execute(
            insert(WebhookEvent).values(
                event_id=eid, type=kind, state="claimed", received_at=time.time() - 120
            )
        )


def test_every_line_of_a_shop_order_is_created(engine: Engine) -> None:
    """Hole 17: the documented example's second line (`SHOP-88412-2`, same external_ref) is created too,
    and re-deliveries, also after a crash, create nothing new."""
    line1 = {
        "code": "SHOP-88412-1",
        "title": "Day pass",
        "quantity": 2,
        "site": "demo",
        "external_ref": "88412",
    }
    line2 = {
        "code": "SHOP-88412-2",
        "title": "Parking",
        "quantity": 1,
        "site": "demo",
        "external_ref": "88412",
    }
    assert handle(engine, event("evt_1", "order.paid", line1))["result"]["created"] is True
    out = handle(engine, event("evt_2", "order.paid", line2))
    assert out["result"] == {"code": "SHOP-88412-2", "created": True, "status": "active"}
    assert [(o.code, o.title, o.quantity) for o in orders(engine, "88412")] == [
        ("SHOP-88412-1", "Day pass", 2),
        ("SHOP-88412-2", "Parking", 1),
    ]
    # The same deliveries again: answered from the event log.
    assert handle(engine, event("evt_1", "order.paid", line1))["duplicate"] is True
    assert handle(engine, event("evt_2", "order.paid", line2))["duplicate"] is True
    # A delivery of line 2 that crashed after creating it: the retry finds the line by its code.
    crashed(engine, "evt_2b", "order.paid")
    out = handle(engine, event("evt_2b", "order.paid", line2))
    assert out["duplicate"] is False and out["result"]["created"] is False
    assert len(orders(engine, "88412")) == 2


def test_lines_without_codes_are_keyed_by_order_and_line(engine: Engine) -> None:
    """Hole 17: lines sent without `code` are told apart by (`external_ref`, `line`); a retry, or the
    order's payment, finds each line again instead of creating or dropping one."""
    a = {"title": "Adult", "quantity": 2, "site": "demo", "external_ref": "9001", "line": 1}
    b = {"title": "Child", "quantity": 1, "site": "demo", "external_ref": "9001", "line": 2}
    ca = handle(engine, event("c-a", "order.created", a))["result"]
    cb = handle(engine, event("c-b", "order.created", b))["result"]
    assert ca["created"] and cb["created"] and ca["code"] != cb["code"]
    assert ca["code"].startswith("HX-") and len(ca["code"]) == 23
    # Another event id for the same line (the shop re-sent it after our crash): nothing new.
    crashed(engine, "c-b2", "order.created")
    assert handle(engine, event("c-b2", "order.created", b))["result"] == {
        "code": cb["code"],
        "created": False,
        "status": "unpaid",
    }
    assert len(orders(engine, "9001")) == 2
    # One payment for the whole shop order pays every line.
    out = handle(engine, event("p-9001", "order.paid", {"external_ref": "9001"}, 1_800_000_000))["result"]
    assert out["created"] is False and sorted(out["codes"]) == sorted([ca["code"], cb["code"]])
    assert [(o.status, o.paid_at) for o in orders(engine, "9001")] == [("active", 1_800_000_000)] * 2
    # The codes are keyed with the webhook secret: another secret gives other codes.
    assert inbound.line_code(SECRET, None, "9001", "1") == ca["code"]
    assert inbound.line_code("another-secret-0123456789", None, "9001", "1") != ca["code"]


def test_a_line_key_reused_for_other_content_is_refused(engine: Engine) -> None:
    """Hole 17: two different lines that name the same line key are not merged silently."""
    handle(engine, event("x1", "order.created", {"title": "Adult", "quantity": 2, "external_ref": "77"}))
    with pytest.raises(Conflict, match="its own `code` or `line`"):
        handle(engine, event("x2", "order.created", {"title": "Child", "quantity": 1, "external_ref": "77"}))
    assert len(orders(engine, "77")) == 1


def test_created_but_unpaid_order_does_not_redeem(engine: Engine) -> None:
    """Hole 17: `order.created` (no payment yet) makes an order that is denied until `order.paid`."""
    out = handle(engine, event("u1", "order.created", {"code": "U-1", "title": "Tour", "site": "demo"}))
    assert out["result"]["status"] == inbound.UNPAID
    tz = ZoneInfo("Asia/Shanghai")
    with engine.connect() as c:
        view = SqlLedger(c).orders({"U-1"})["U-1"]
        site = view.site_id
    d = decide(view, Ask(), site, "Gate 1", time.time(), tz)
    assert not d.ok and d.reason == "NOT_PAID"
    handle(engine, event("u2", "order.paid", {"code": "U-1", "title": "Tour"}))
    with engine.connect() as c:
        view = SqlLedger(c).orders({"U-1"})["U-1"]
    assert view.status == "active" and decide(view, Ask(), site, "Gate 1", time.time(), tz).ok


def test_unpaid_order_is_stored_unpaid(engine: Engine) -> None:
    """Hole 17: `order.created` without `paid_at` stores status `unpaid` and no payment time."""
    handle(engine, event("u1", "order.created", {"code": "U-2", "title": "Tour"}))
    with engine.connect() as c:
        o = c.execute(select(Order.status, Order.paid_at).where(Order.code == "U-2")).one()
    assert (o.status, o.paid_at) == ("unpaid", None)
    # With paid_at the shop says it is paid already.
    out = handle(
        engine,
        event("u3", "order.created", {"code": "U-3", "title": "Tour", "paid_at": "2027-01-15T08:00:00Z"}),
    )
    assert out["result"]["status"] == "active"


def test_payment_starts_valid_days(engine: Engine) -> None:
    """Hole 17: `order.paid` starts the product's `valid_days` at the payment, not at the order's creation."""
    db = SqlDatabase(engine)
    with db.read() as tx:
        sites = tx.sites.ids()
    create_product(db, ProductIn(sku="spa3", title="Spa", valid_days=3), sites)
    handle(engine, event("v1", "order.created", {"code": "V-1", "product": "spa3"}))
    paid = datetime(2030, 5, 20, 9, 30, tzinfo=UTC).timestamp()
    handle(engine, event("v2", "order.paid", {"code": "V-1", "paid_at": "2030-05-20T09:30:00Z"}))
    with engine.connect() as c:
        o = c.execute(select(Order.paid_at, Order.valid_until, Order.status).where(Order.code == "V-1")).one()
    assert o.paid_at == paid and o.valid_until == paid + 3 * 86400 and o.status == "active"
    # A second payment event for the same order changes nothing: the first payment counts.
    handle(engine, event("v3", "order.paid", {"code": "V-1", "paid_at": "2031-01-01T00:00:00Z"}))
    with engine.connect() as c:
        again = c.execute(select(Order.paid_at, Order.valid_until).where(Order.code == "V-1")).one()
    assert (again.paid_at, again.valid_until) == (paid, paid + 3 * 86400)
