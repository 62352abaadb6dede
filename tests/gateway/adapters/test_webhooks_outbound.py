# Outbound webhooks: signed, ordered, durable delivery to a real local HTTP receiver, with retries.
from __future__ import annotations

import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from gateway.adapters.db.engine import make_engine, migrate, writer
from gateway.adapters.db.models import WebhookCursor
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.adapters.db.repositories.ledger import SqlLedger
from gateway.adapters.mqtt.oled import render
from gateway.adapters.webhooks.outbound import Deliverer
from gateway.adapters.webhooks.policy import backoff, deliverable
from gateway.adapters.webhooks.signing import verify
from gateway.config import Target, WebhookSettings
from gateway.services import adjustments as adjust
from gateway.services.accounts import create_user, issue_api_token
from gateway.services.ledger import Place, Request, apply_batch
from gateway.services.orders import OrderIn, SiteIn, create_orders, create_site
from tests.conftest import GatewayProc
from tests.helpers import wait_for

SECRET = "outbound-secret-0123456789"


class Receiver:
    """A real HTTP server on loopback that answers with scripted status codes, then 200."""

    def __init__(self, fail_first: int = 0, status: int = 500) -> None:
        self.fail_first = fail_first
        self.status = status
        self.hits: list[tuple[dict[str, str], bytes, int]] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with outer.lock:
                    code = outer.status if len(outer.hits) < outer.fail_first else 200
                    outer.hits.append(({k.lower(): v for k, v in self.headers.items()}, body, code))
                self.send_response(code)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def accepted(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(b) for _, b, code in self.hits if code == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver(fail_first=2)
    yield r
    r.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Engine]:
    url = (
        f"sqlite:///{tmp_path / 'out.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    )
    e = make_engine(url)
    migrate(e)
    create_site(SqlDatabase(e), SiteIn(slug="s1", name="Site One", timezone="UTC"))
    create_orders(
        SqlDatabase(e), [OrderIn(code="OUT-1", title="Pack", quantity=5, site="s1", external_ref="shop-1")]
    )
    yield e
    e.dispose()


def scan(
    e: Engine, sid: str, qty: int = 1, op: str = "redeem", ref: str | None = None, code: str = "OUT-1"
) -> None:
    with e.connect() as c, writer(c).begin():
        site_id = c.exec_driver_sql("SELECT id FROM sites WHERE slug='s1'").scalar()
        place = Place(site_id, "Gate A", ZoneInfo("UTC"))
        apply_batch(
            SqlLedger(c),
            [(Request("dev-1", sid, code, qty, "in", None, op, None, ref, "alice"), place)],
            time.time(),
            render=render,
        )


def settings(**kw: Any) -> WebhookSettings:
    base: dict[str, Any] = {"webhook_poll_s": 0.05, "webhook_retry_max_s": 0.2}
    base.update(kw)
    return WebhookSettings(**base)


def test_backoff_and_gap_policy() -> None:
    assert [backoff(n, 60) for n in range(8)] == [0, 1, 2, 4, 8, 16, 32, 60]

    @dataclass
    class R:
        id: int
        server_time: float

    rows = [R(5, 100.0), R(6, 100.0), R(9, 100.0), R(10, 100.0)]
    assert deliverable(4, rows, now=101.0) == 2  # a fresh hole (7, 8) may still fill in: wait
    assert deliverable(4, rows, now=111.0) == 4  # an old hole is a rolled-back id: skip it
    assert deliverable(3, rows, now=101.0) == 0
    assert deliverable(4, [], now=0) == 0


def test_retry_after_two_failures_then_in_order(engine: Engine, receiver: Receiver) -> None:
    d = Deliverer(engine, [Target(receiver.url, SECRET)], settings())  # starts at the present
    scan(engine, "1", 2)
    scan(engine, "2", 9)  # denied: QTY_EXCEEDED, not sent without WEBHOOK_DENIALS
    scan(engine, "3", 1)
    scan(engine, "4", op="annul", ref="3")
    d.start()
    try:
        wait_for(lambda: len(receiver.accepted()) == 3, 20, "three events accepted")
    finally:
        d.stop()
    events = receiver.accepted()
    assert [e["type"] for e in events] == ["redemption.ok", "redemption.ok", "redemption.annulled"]
    assert [e["data"]["units"] for e in events] == [2, 1, 1]
    first = events[0]
    assert first["data"]["code"] == "OUT-1" and first["data"]["external_ref"] == "shop-1"
    assert first["data"]["site"] == "s1" and first["data"]["gate"] == "Gate A"
    assert first["data"]["user"] == "alice" and first["data"]["left"] == 3
    assert events[2]["data"]["ref_id"] == events[1]["data"]["redemption_id"]
    # The first event was tried three times (two 500s, then 200), with the same id each time.
    assert [json.loads(b)["id"] for _, b, _ in receiver.hits[:3]] == [first["id"]] * 3
    assert [code for _, _, code in receiver.hits] == [500, 500, 200, 200, 200]
    for headers, body, _ in receiver.hits:
        verify(SECRET, headers["x-hexiao-timestamp"], headers["x-hexiao-signature"], body, time.time(), 300)
        assert headers["x-hexiao-event"] == json.loads(body)["type"]
    with engine.connect() as c:
        cur = c.execute(select(WebhookCursor.last_id, WebhookCursor.delivered, WebhookCursor.failures)).one()
    assert (cur.delivered, cur.failures) == (3, 0)
    assert cur.last_id == events[2]["data"]["redemption_id"]


def test_cursor_survives_restart_and_denials_option(engine: Engine) -> None:
    rcv = Receiver()
    try:
        d = Deliverer(engine, [Target(rcv.url, SECRET)], settings(webhook_denials=True))
        scan(engine, "1")
        d.run_once(time.time())
        assert [e["type"] for e in rcv.accepted()] == ["redemption.ok"]
        d.stop()
        scan(engine, "2", 99)  # denied
        with engine.connect() as c:
            rid = c.exec_driver_sql("SELECT id FROM redemptions WHERE scan_id='1'").scalar()
        assert isinstance(rid, int)
        adjust.revert(SqlDatabase(engine), rid, "boss", "wrong person")
        d2 = Deliverer(engine, [Target(rcv.url, SECRET)], settings(webhook_denials=True))  # a restart
        d2.run_once(time.time())
        d2.stop()
        got = rcv.accepted()
        assert [e["type"] for e in got] == ["redemption.ok", "redemption.denied", "redemption.reverted"]
        assert got[1]["data"]["reason"] == "QTY_EXCEEDED" and got[1]["data"]["ok"] is False
        assert got[2]["data"]["ref_id"] == rid and got[2]["data"]["user"] == "boss"
        assert len(rcv.hits) == 3  # nothing sent twice across the restart
    finally:
        rcv.close()


def test_unreachable_receiver_holds_only_its_own_events(engine: Engine) -> None:
    good = Receiver()
    try:
        dead = "http://127.0.0.1:9/nobody"  # discard port: connection refused
        d = Deliverer(engine, [Target(dead, SECRET), Target(good.url, SECRET)], settings())
        scan(engine, "1")
        d.run_once(time.time())
        st = {s["url"]: s for s in d.status()}
        assert st[dead]["failures"] == 1 and "Connect" in st[dead]["last_error"]
        assert st[dead]["rows_behind"] == 1
        assert st[good.url]["delivered"] == 1 and st[good.url]["rows_behind"] == 0
        d.stop()
    finally:
        good.close()


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"webhook_urls": "ftp://x/y"}, "not an http(s) URL"),
        ({"webhook_urls": "http://127.0.0.1:1/a|short"}, "at least 16"),
    ],
)
def test_bad_settings(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ValueError, match=re.escape(needle)):
        WebhookSettings(**env)  # type: ignore[arg-type]


def test_url_without_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="no secret"):
        WebhookSettings(webhook_urls="http://127.0.0.1:1/a").targets()
    t = WebhookSettings(
        webhook_urls=f"http://127.0.0.1:1/a|{SECRET},http://127.0.0.1:2/b", webhook_out_secret="x" * 16
    )
    assert t.targets() == [Target("http://127.0.0.1:1/a", SECRET), Target("http://127.0.0.1:2/b", "x" * 16)]


def test_outbound_never_signs_with_the_inbound_secret() -> None:
    """A receiver holding the inbound secret could forge the shop's order events: no fallback to it, and
    an outbound secret equal to it stops the start."""
    with pytest.raises(ValueError, match="no secret"):
        WebhookSettings(webhook_urls="http://127.0.0.1:1/a", webhook_secret="i" * 16)
    with pytest.raises(ValueError, match="must differ"):
        WebhookSettings(webhook_secret="i" * 16, webhook_out_secret="i" * 16)
    with pytest.raises(ValueError, match="must differ"):
        WebhookSettings(webhook_urls=f"http://127.0.0.1:1/a|{'i' * 16}", webhook_secret="i" * 16)


def test_gateway_delivers_console_redemptions(
    mosquitto: Any, gateway_factory: Callable[..., GatewayProc], receiver: Receiver, tmp_path: Path
) -> None:
    db = tmp_path / "gw.db"
    e = make_engine(f"sqlite:///{db}")
    migrate(e)
    create_user(SqlDatabase(e), "boss", "boss-password-1", "owner")
    create_user(SqlDatabase(e), "sup", "sup-password-1", "supervisor")
    tokens = {u: issue_api_token(SqlDatabase(e), u, "tests") for u in ("boss", "sup")}
    e.dispose()
    env = {"WEBHOOK_URLS": f"{receiver.url}|{SECRET}", "WEBHOOK_POLL_S": "0.1", "WEBHOOK_RETRY_MAX_S": "0.5"}
    g = gateway_factory(mosquitto.url, db, env=env)
    assert g.api("POST", "/api/sites", json={"slug": "s1", "name": "Site One"}).status_code == 201
    assert (
        g.api(
            "POST",
            "/api/orders",
            json={"orders": [{"code": "GW-1", "title": "T", "quantity": 2, "site": "s1"}]},
        ).status_code
        == 201
    )
    r = g.api(
        "POST",
        "/api/redeem",
        json={"request_id": secrets.token_hex(8), "code": "GW-1", "site": "s1", "by": "bob", "qty": 2},
    )
    assert r.status_code == 200 and r.json()["ok"] is True, r.text
    wait_for(lambda: receiver.accepted(), 20, "the event at the receiver")
    (ev,) = receiver.accepted()
    assert ev["type"] == "redemption.ok" and ev["data"]["code"] == "GW-1" and ev["data"]["units"] == 2
    assert ev["data"]["user"] == "local" and ev["data"]["left"] == 0  # the caller, not the claimed `by`
    assert [code for _, _, code in receiver.hits] == [500, 500, 200]
    status = g.api("GET", "/api/webhooks/outbound", headers={"authorization": f"Bearer {tokens['boss']}"})
    assert status.status_code == 200, status.text
    (target,) = status.json()["targets"]
    assert target["url"] == receiver.url and target["delivered"] == 1 and target["failures"] == 0
    assert target["last_id"] == ev["data"]["redemption_id"] and target["rows_behind"] == 0
    denied = g.api("GET", "/api/webhooks/outbound", headers={"authorization": f"Bearer {tokens['sup']}"})
    assert denied.status_code == 403


def _strict(body: bytes) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"not JSON: {name}")

    return json.loads(body, parse_constant=refuse)


def test_non_finite_number_does_not_block_delivery(engine: Engine, receiver: Receiver) -> None:
    """Hole 14: a ledger row with an infinite device time (as `at: 1e999` once stored) is sent as strict
    JSON (the number as null), logged, and the events after it are delivered too."""
    from gateway.adapters.db.models import Redemption
    from gateway.adapters.webhooks.outbound import encode

    with pytest.raises(ValueError):
        _strict(json.dumps({"t": float("inf")}).encode())  # the receiver's parser is strict
    assert _strict(encode({"id": "x", "data": {"t": float("inf"), "l": [float("nan"), 1.5]}})) == {
        "id": "x",
        "data": {"t": None, "l": [None, 1.5]},
    }
    d = Deliverer(engine, [Target(receiver.url, SECRET)], settings())
    scan(engine, "1")
    with engine.connect() as c, writer(c).begin():
        c.execute(Redemption.__table__.update().values(device_time=float("inf")))
    scan(engine, "2")
    d.start()
    try:
        wait_for(lambda: len(receiver.accepted()) == 2, 20, "both events accepted")
    finally:
        d.stop()
    bodies = [b for _, b, code in receiver.hits if code == 200]
    events = [_strict(b) for b in bodies]
    assert events[0]["data"]["device_time"] is None and events[0]["data"]["units"] == 1
    assert events[1]["data"]["redemption_id"] > events[0]["data"]["redemption_id"]
    assert all(b"Infinity" not in b for _, b, _ in receiver.hits)
