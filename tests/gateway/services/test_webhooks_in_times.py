# Inbound shop webhooks: times are checked at the boundary (bounded, finite), with a per-field error.
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from gateway.adapters.db.models import Order, WebhookEvent
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.adapters.webhooks.signing import sign
from gateway.domain.errors import ValidationFailed
from gateway.services import webhooks_in as inbound
from gateway.services.orders import SiteIn, create_site
from tests.conftest import GatewayProc
from tests.gateway.trust_fixtures import ledger

SECRET = "test-webhook-secret-0123456789"


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Engine]:
    e = ledger(request.param, tmp_path, request)
    create_site(SqlDatabase(e), SiteIn(slug="ny", name="New York", timezone="America/New_York"))
    yield e
    e.dispose()


def body(eid: str, data: dict[str, Any], created: Any = None) -> bytes:
    doc = {
        "id": eid,
        "type": "order.paid",
        "created": time.time() if created is None else created,
        "data": data,
    }
    return json.dumps(doc).encode()


def nothing_stored(e: Engine) -> bool:
    with e.connect() as c:
        return c.execute(select(Order.id)).first() is None and c.execute(select(WebhookEvent)).first() is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("valid_until", "0001-01-01T00:00:00Z"),
        ("valid_until", "9999-12-31T23:59:59-05:00"),
        ("valid_from", "1970-01-01T00:00:00Z"),
        ("paid_at", 0),
        ("paid_at", "2200-01-01T00:00:00"),
    ],
)
def test_out_of_range_times_are_refused_per_field(engine: Engine, field: str, value: Any) -> None:
    """Hole 10: `valid_until: "0001-01-01T00:00:00Z"` (and other times outside 2000-2099) is refused at the
    webhook with the field named, instead of an order whose every later scan overflows."""
    data = {"code": "T-1", "title": "Tour", "site": "ny", field: value}
    with pytest.raises(ValidationFailed) as info:
        inbound.handle(SqlDatabase(engine), inbound.parse(body("e1", data)), None, time.time(), secret=SECRET)
    assert info.value.message.startswith(f"data.{field}:")
    assert info.value.details["problems"][0]["field"] == f"data.{field}"
    assert nothing_stored(engine)


@pytest.mark.parametrize("created", ["1e999", "-1e999", "0", "99999999999"])
def test_event_time_must_be_finite_and_bounded(created: str) -> None:
    """Hole 10: the event's `created` (the default payment time) is a finite time in 2000-2099."""
    raw = body("e1", {"code": "T-1", "title": "Tour"}, created="CREATED").replace(
        b'"CREATED"', created.encode()
    )
    with pytest.raises(ValidationFailed) as info:
        inbound.parse(raw)
    assert info.value.message.startswith("created:")


def test_accepted_times_convert_at_every_zone(engine: Engine) -> None:
    """Hole 10: the extreme times still accepted become local dates at any site without overflow."""
    data = {
        "code": "T-2",
        "title": "Tour",
        "site": "ny",
        "valid_from": "2000-01-01T00:00:00+14:00",
        "valid_until": "2099-12-31T23:59:59-12:00",
    }
    inbound.handle(SqlDatabase(engine), inbound.parse(body("e2", data)), None, time.time(), secret=SECRET)
    with engine.connect() as c:
        o = c.execute(select(Order.valid_from, Order.valid_until).where(Order.code == "T-2")).one()
    for zone in ("America/New_York", "Pacific/Kiritimati", "Etc/GMT+12"):
        assert datetime.fromtimestamp(o.valid_from, ZoneInfo(zone)).year >= 1999
        assert datetime.fromtimestamp(o.valid_until, ZoneInfo(zone)).year <= 2100


def test_rest_answers_one_error_shape(mosquitto: Any, gateway_factory: Callable[..., GatewayProc]) -> None:
    """Hole 10: over HTTP the refusal is a 422 in the one error shape, and nothing is created."""
    g = gateway_factory(mosquitto.url, env={"WEBHOOK_SECRET": SECRET})
    raw = body("evt-old", {"code": "T-3", "title": "Tour", "valid_until": "0001-01-01T00:00:00Z"})
    stamp = str(int(time.time()))
    r = g.api(
        "POST",
        "/api/webhooks/orders",
        content=raw,
        headers={
            "content-type": "application/json",
            "x-hexiao-timestamp": stamp,
            "x-hexiao-signature": sign(SECRET, stamp, raw),
        },
    )
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "VALIDATION" and err["message"].startswith("data.valid_until:")
    assert err["details"]["problems"][0]["field"] == "data.valid_until"
    assert g.api("GET", "/api/orders/T-3").status_code == 404
