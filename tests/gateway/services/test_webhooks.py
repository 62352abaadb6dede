# Inbound order webhook: signatures, freshness, replays and each event type, in-process and over REST.
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, update

from gateway.adapters.db.models import Audit, Order, WebhookEvent
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.adapters.webhooks.signing import sign, verify
from gateway.domain.errors import BadSignature, Conflict, NotFound, Stale, ValidationFailed
from gateway.services import adjustments as adjust
from gateway.services import webhooks_in as inbound
from gateway.services.orders import SiteIn, create_site
from tests.conftest import GatewayProc
from tests.gateway.trust_fixtures import ledger

SECRET = "test-webhook-secret-0123456789"


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Engine]:
    e = ledger(request.param, tmp_path, request)
    create_site(SqlDatabase(e), SiteIn(slug="s1", name="Site One"))
    yield e
    e.dispose()


def event(eid: str, kind: str, data: dict[str, Any], created: float | None = None) -> inbound.Envelope:
    body = json.dumps({"id": eid, "type": kind, "created": created or time.time(), "data": data}).encode()
    return inbound.parse(body)


def handle(e: Engine, ev: inbound.Envelope, key: bytes | None, now: float) -> dict[str, Any]:
    return inbound.handle(SqlDatabase(e), ev, key, now, secret=SECRET)


def order(e: Engine, code: str) -> Any:
    with e.connect() as c:
        return c.execute(select(*Order.__table__.c).where(Order.code == code)).first()


# -- signature -------------------------------------------------------------------------------------------
def test_signature_matches_documented_recipe() -> None:
    import hashlib
    import hmac

    body = b'{"id":"e1"}'
    expected = "sha256=" + hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, "1700000000", body) == expected
    verify(SECRET, "1700000000", expected, body, 1700000100, 300)  # no exception


@pytest.mark.parametrize(
    ("stamp", "sig_of", "now", "error", "needle"),
    [
        ("1700000000", None, 1700000000, BadSignature, "missing X-Hexiao-Signature"),
        (None, "1700000000", 1700000000, BadSignature, "missing X-Hexiao-Timestamp"),
        ("1700000000", "1700000001", 1700000000, BadSignature, "does not match"),  # timestamp swapped
        ("1700000000", "wrong-secret", 1700000000, BadSignature, "does not match"),
        ("nan", "nan", 1700000000, BadSignature, "Unix seconds"),
        ("1700000000", "1700000000", 1700000301, Stale, "300 s"),  # too old
        ("1700000000", "1700000000", 1699999699, Stale, "300 s"),  # from the future
    ],
)
def test_signature_refusals(
    stamp: str | None, sig_of: str | None, now: float, error: type[Exception], needle: str
) -> None:
    body = b'{"id":"e1"}'
    sig = None
    if sig_of == "wrong-secret":
        sig = sign("another-secret-0123456789", str(stamp), body)
    elif sig_of is not None:
        sig = sign(SECRET, sig_of, body)
    with pytest.raises(error) as info:
        verify(SECRET, stamp, sig, body, now, 300)
    assert needle in str(info.value)


def test_tampered_body_is_refused() -> None:
    sig = sign(SECRET, "1700000000", b'{"units":1}')
    with pytest.raises(BadSignature):
        verify(SECRET, "1700000000", sig, b'{"units":9}', 1700000000, 300)


# -- event handling (real SQLite) ------------------------------------------------------------------------
def test_created_then_paid_sets_paid_at(engine: Engine) -> None:
    out = handle(
        engine,
        event("e1", "order.created", {"code": "WH-1", "title": "Tour", "quantity": 3, "site": "s1"}),
        None,
        0,
    )
    assert out == {"duplicate": False, "result": {"code": "WH-1", "created": True, "status": "unpaid"}}
    assert order(engine, "WH-1").quantity == 3
    out = handle(engine, event("e2", "order.paid", {"code": "WH-1", "title": "Tour"}, 1_800_000_000), None, 0)
    assert out["result"] == {"code": "WH-1", "created": False, "status": "active"}
    assert order(engine, "WH-1").paid_at == 1_800_000_000  # the event's time when data has no paid_at


def test_paid_creates_missing_order_with_given_paid_at(engine: Engine) -> None:
    ev = event(
        "p1",
        "order.paid",
        {"code": "WH-2", "title": "Spa", "quantity": 2, "paid_at": "2027-01-02T03:04:05+08:00"},
    )
    handle(engine, ev, None, 0)
    assert order(engine, "WH-2").paid_at == 1798830245.0


def test_created_without_code_generates_one_and_replay_returns_it(engine: Engine) -> None:
    ev = event("g1", "order.created", {"title": "Wash x5", "quantity": 5, "external_ref": "shop-77"})
    first = handle(engine, ev, None, 0)
    code = first["result"]["code"]
    assert code.startswith("HX-") and order(engine, code).external_ref == "shop-77"
    again = handle(engine, ev, None, 0)
    assert again == {"duplicate": True, "result": {"code": code, "created": True, "status": "unpaid"}}
    with engine.connect() as c:
        assert c.execute(select(Order.id)).all().__len__() == 1


def test_refund_partial_then_too_many_is_refused_and_changes_nothing(engine: Engine) -> None:
    handle(engine, event("c", "order.paid", {"code": "R1", "title": "Ticket", "quantity": 10}), None, 0)
    out = handle(
        engine, event("r1", "order.refunded", {"code": "R1", "units": 4, "reason": "no-show"}), None, 0
    )
    assert out["result"]["refunded"] == 4 and out["result"]["left"] == 6
    with pytest.raises(Conflict) as info:
        handle(engine, event("r2", "order.refunded", {"code": "R1", "units": 7}), None, 0)
    assert "only 6 unredeemed" in info.value.message
    o = order(engine, "R1")
    assert (o.refunded, o.status) == (4, "active")
    with engine.connect() as c:
        rows = {r.event_id: (r.state, r.error) for r in c.execute(select(WebhookEvent))}
    assert rows["r1"] == ("done", None)
    assert rows["r2"][0] == "failed" and rows["r2"][1].startswith("CONFLICT")
    # The refused event may come again once the cause is gone: it is applied then, not reported a duplicate.
    handle(engine, event("r3", "order.refunded", {"code": "R1", "units": 2}), None, 0)
    out = handle(engine, event("r2", "order.refunded", {"code": "R1", "units": 4}), None, 0)
    assert out["duplicate"] is False and out["result"]["status"] == "refunded"


def test_refund_replay_refunds_once(engine: Engine) -> None:
    handle(engine, event("c", "order.paid", {"code": "R2", "title": "Ticket", "quantity": 5}), None, 0)
    ev = event("rr", "order.refunded", {"code": "R2", "units": 2})
    handle(engine, ev, None, 0)
    assert handle(engine, ev, None, 0)["duplicate"] is True
    assert order(engine, "R2").refunded == 2
    with engine.connect() as c:
        audit = c.execute(select(Audit.actor, Audit.action, Audit.units, Audit.reason)).all()
    assert [(a.actor, a.action, a.units) for a in audit] == [("webhook", "refund", 2)]
    assert audit[0].reason.startswith("webhook rr:")


def test_crashed_refund_is_not_applied_twice(engine: Engine) -> None:
    """A delivery that died after the refund landed but before it was marked done (a stale claim)."""
    handle(engine, event("c", "order.paid", {"code": "R3", "title": "Ticket", "quantity": 5}), None, 0)
    adjust.refund(SqlDatabase(engine), "R3", 2, "webhook", "webhook lost-1: ")
    with engine.connect() as c, c.begin():
        c.execute(
            insert(WebhookEvent).values(
                event_id="lost-1",
                type="order.refunded",
                state="claimed",
                code="R3",
                received_at=time.time() - 120,
            )
        )
    # An id that differs only where a LIKE pattern would see a wildcard is another event: it refunds.
    out = handle(engine, event("lost_1", "order.refunded", {"code": "R3", "units": 1}), None, 0)
    assert out["duplicate"] is False and out["result"]["refunded"] == 3
    out = handle(engine, event("lost-1", "order.refunded", {"code": "R3", "units": 2}), None, time.time())
    assert out == {"duplicate": False, "result": {"code": "R3", "recovered": True}}
    assert order(engine, "R3").refunded == 3


def test_fresh_claim_answers_conflict(engine: Engine) -> None:
    with engine.connect() as c, c.begin():
        c.execute(
            insert(WebhookEvent).values(
                event_id="busy", type="order.cancelled", state="claimed", code="X", received_at=time.time()
            )
        )
    with pytest.raises(Conflict, match="being applied"):
        handle(engine, event("busy", "order.cancelled", {"code": "X"}), None, time.time())


def test_cancel_and_cancel_of_used_order(engine: Engine) -> None:
    handle(engine, event("c1", "order.paid", {"code": "C1", "title": "T", "quantity": 2}), None, 0)
    out = handle(engine, event("x1", "order.cancelled", {"code": "C1", "reason": "buyer asked"}), None, 0)
    assert out["result"] == {"code": "C1", "status": "cancelled"}
    handle(engine, event("c2", "order.paid", {"code": "C2", "title": "T", "quantity": 2}), None, 0)
    with engine.connect() as c, c.begin():
        c.execute(update(Order).where(Order.code == "C2").values(used=1))
    with pytest.raises(Conflict, match="refund the rest"):
        handle(engine, event("x2", "order.cancelled", {"code": "C2"}), None, 0)
    assert order(engine, "C2").status == "active"


def test_refund_of_unknown_order_is_not_found(engine: Engine) -> None:
    with pytest.raises(NotFound):
        handle(engine, event("u1", "order.refunded", {"code": "NOPE"}), None, 0)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", ""),
        (b"[1]", ""),
        (b'{"type":"order.paid","created":1,"data":{}}', "id"),
        (b'{"id":"a","type":"order.shipped","created":1,"data":{}}', "type"),
        (b'{"id":"a","type":"order.paid","data":{}}', "created"),
        (b'{"id":"a b","type":"order.paid","created":1,"data":{}}', "id"),
    ],
)
def test_bad_envelopes(body: bytes, field: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        inbound.parse(body)
    if field:
        assert info.value.message.startswith(field + ":")


@pytest.mark.parametrize(
    ("kind", "data", "field"),
    [
        ("order.paid", {"code": "Q", "title": "T", "quantity": 0}, "data.quantity"),
        ("order.created", {"code": "Q", "title": "T", "colour": "red"}, "data.colour"),
        ("order.refunded", {"units": 1}, "data.code"),
        ("order.refunded", {"code": "Q", "units": 0}, "data.units"),
        ("order.cancelled", {"code": "Q", "units": 1}, "data.units"),
    ],
)
def test_bad_data_names_the_field_and_records_nothing(
    engine: Engine, kind: str, data: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationFailed) as info:
        handle(engine, event("bad", kind, data), None, 0)
    assert info.value.message.startswith(field + ":")
    with engine.connect() as c:
        assert c.execute(select(WebhookEvent)).first() is None
        assert c.execute(select(Order)).first() is None


def test_unknown_site_is_refused(engine: Engine) -> None:
    with pytest.raises(ValidationFailed, match="unknown site"):
        handle(engine, event("s", "order.paid", {"code": "S", "title": "T", "site": "zz"}), None, 0)
    assert order(engine, "S") is None


# -- over REST on a real gateway ------------------------------------------------------------------------
def post(
    g: GatewayProc, doc: dict[str, Any] | bytes, stamp: float | None = None, secret: str = SECRET
) -> Any:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    ts = str(int(stamp if stamp is not None else time.time()))
    headers = {
        "content-type": "application/json",
        "x-hexiao-timestamp": ts,
        "x-hexiao-signature": sign(secret, ts, body),
    }
    return g.api("POST", "/api/webhooks/orders", content=body, headers=headers)


@pytest.fixture
def hook_gw(mosquitto: Any, gateway_factory: Callable[..., GatewayProc]) -> GatewayProc:
    g = gateway_factory(mosquitto.url, env={"WEBHOOK_SECRET": SECRET})
    assert g.api("POST", "/api/sites", json={"slug": "s1", "name": "Site One"}).status_code == 201
    return g


def test_rest_flow(hook_gw: GatewayProc) -> None:
    g = hook_gw
    now = time.time()
    created = {
        "id": "evt-1",
        "type": "order.paid",
        "created": now,
        "data": {"code": "WEB-1", "title": "Day pass", "quantity": 4, "site": "s1"},
    }
    r = post(g, created)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "ok": True,
        "event": "evt-1",
        "type": "order.paid",
        "duplicate": False,
        "result": {"code": "WEB-1", "created": True, "status": "active"},
    }
    assert g.api("GET", "/api/orders/WEB-1").json()["quantity"] == 4

    r = post(g, created)  # replay, freshly signed: nothing changes
    assert r.status_code == 200 and r.json()["duplicate"] is True

    refund = {"id": "evt-2", "type": "order.refunded", "created": now, "data": {"code": "WEB-1", "units": 1}}
    r = post(g, refund)
    assert r.status_code == 200, r.text
    assert r.json()["result"]["left"] == 3
    assert post(g, refund).json()["duplicate"] is True
    assert g.api("GET", "/api/orders/WEB-1").json()["refunded"] == 1

    r = post(
        g, {"id": "evt-3", "type": "order.refunded", "created": now, "data": {"code": "WEB-1", "units": 9}}
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "CONFLICT"

    r = post(g, {"id": "evt-4", "type": "order.cancelled", "created": now, "data": {"code": "WEB-1"}})
    assert r.status_code == 200 and r.json()["result"]["status"] == "cancelled"
    assert g.api("GET", "/api/orders/WEB-1").json()["status"] == "cancelled"


def test_rest_refusals(hook_gw: GatewayProc) -> None:
    g = hook_gw
    doc = {
        "id": "evt-9",
        "type": "order.created",
        "created": time.time(),
        "data": {"code": "WEB-9", "title": "T"},
    }
    r = post(g, doc, secret="not-the-secret-0123456789")
    assert r.status_code == 401 and r.json()["error"]["code"] == "BAD_SIGNATURE"
    r = g.api("POST", "/api/webhooks/orders", content=json.dumps(doc).encode())
    assert r.status_code == 401 and r.json()["error"]["code"] == "BAD_SIGNATURE"
    r = post(g, doc, stamp=time.time() - 301)
    assert r.status_code == 401 and r.json()["error"]["code"] == "STALE"
    r = post(g, doc, stamp=time.time() + 400)
    assert r.status_code == 401 and r.json()["error"]["code"] == "STALE"
    r = post(g, json.dumps(dict(doc, pad="x" * 70_000)).encode())
    assert r.status_code == 422 and "larger than" in r.json()["error"]["message"]
    r = post(g, b"{oops")
    assert r.status_code == 422 and r.json()["error"]["code"] == "VALIDATION"
    bad = dict(doc, data={"code": "WEB-9", "title": "T", "quantity": -1})
    r = post(g, bad)
    assert r.status_code == 422 and r.json()["error"]["message"].startswith("data.quantity:")
    assert g.api("GET", "/api/orders/WEB-9").status_code == 404  # nothing was created by any of these
    assert post(g, doc).status_code == 200  # and the same id, well signed, now goes through


def test_rest_webhook_off_without_secret(gateway: GatewayProc) -> None:
    doc = {"id": "e", "type": "order.created", "created": time.time(), "data": {"title": "T"}}
    r = post(gateway, doc)
    assert r.status_code == 503 and "WEBHOOK_SECRET" in r.json()["error"]["message"]


def test_short_secret_stops_the_start(mosquitto: Any, gateway_factory: Callable[..., GatewayProc]) -> None:
    with pytest.raises(AssertionError, match="at least 16 characters"):
        gateway_factory(mosquitto.url, env={"WEBHOOK_SECRET": "short"})


def test_crashed_create_is_not_applied_twice(engine: Engine) -> None:
    """The order was created, then the gateway died before recording the event: a later delivery finds it."""
    with engine.connect() as c, c.begin():
        c.execute(
            insert(WebhookEvent).values(
                event_id="lost-2", type="order.created", state="claimed", received_at=time.time() - 120
            )
        )
    handle(engine, event("other", "order.created", {"title": "T", "external_ref": "shop-9"}), None, 0)
    ev = event("lost-2", "order.created", {"title": "T", "external_ref": "shop-9"})
    out = handle(engine, ev, None, time.time())
    assert out["duplicate"] is False and out["result"]["created"] is False
    with engine.connect() as c:
        assert len(c.execute(select(Order.id).where(Order.external_ref == "shop-9")).all()) == 1
        assert (
            c.execute(select(WebhookEvent.state).where(WebhookEvent.event_id == "lost-2")).scalar() == "done"
        )
