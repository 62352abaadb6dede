# Strict REST input against a real gateway: unknown fields, lax types, time zones, idempotency keys.
from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast
from zoneinfo import ZoneInfo

import httpx
import pytest

from gateway.adapters.brokers.mosquitto import Mosquitto
from gateway.adapters.db.engine import make_engine, migrate
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.adapters.db.repositories.writer import SqlWriter
from gateway.adapters.mqtt.transport import mqtt_transport
from gateway.domain.errors import Unavailable
from gateway.entrypoints.runtime import Runtime
from gateway.services.accounts import create_user, issue_api_token
from gateway.services.guessing import TypedGuard
from gateway.services.redeem import RedemptionService
from gateway.services.sites import SiteIn, create_site
from gateway.services.typed_redeem import RedeemIn, redeem_typed
from tests.conftest import GatewayProc

GATEWAY_TZ = "America/New_York"  # not the old hard-wired Asia/Shanghai, so a default is visible


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProc]:
    tmp: Path = tmp_path_factory.mktemp("rest")
    broker = Mosquitto(workdir=tmp / "broker")
    broker.start()
    g = GatewayProc(broker.url, tmp / "rest.db", tmp / "var", env={"TIMEZONE": GATEWAY_TZ}).start()
    engine = make_engine(f"sqlite:///{g.db_path}")
    create_user(SqlDatabase(engine), "boss", "boss-secret-1", "owner")
    AUTH["authorization"] = "Bearer " + issue_api_token(SqlDatabase(engine), "boss")
    engine.dispose()
    assert (
        g.api("POST", "/api/sites", json={"slug": "sh", "name": "Shanghai", "timezone": "Asia/Shanghai"})
    ).status_code == 201
    yield g
    g.stop()
    broker.stop()


AUTH: dict[str, str] = {}


def api(gw: GatewayProc, method: str, path: str, **kw: Any) -> httpx.Response:
    """As the owner with a bearer token (some routes, e.g. the fleet's, do not trust loopback)."""
    return gw.api(method, path, headers={**AUTH, **kw.pop("headers", {})}, **kw)


def shape(r: httpx.Response) -> dict[str, Any]:
    """The one error shape: {"error": {"code", "message", "details"}}; returns the inner object."""
    body = r.json()
    assert set(body) == {"error"}, r.text
    err = body["error"]
    assert set(err) == {"code", "message", "details"}, r.text
    assert isinstance(err["code"], str) and isinstance(err["message"], str) and err["message"]
    assert isinstance(err["details"], dict)
    return cast(dict[str, Any], err)


def new_order(gw: GatewayProc, code: str, quantity: int = 2, **extra: Any) -> None:
    order = {"code": code, "title": "T", "quantity": quantity, "site": "sh", **extra}
    r = api(gw, "POST", "/api/orders", json={"orders": [order]})
    assert r.status_code == 201, r.text


def redeem(gw: GatewayProc, body: dict[str, Any], **kw: Any) -> httpx.Response:
    return api(gw, "POST", "/api/redeem", json=body, **kw)


# -- Hole 8 -------------------------------------------------------------------------------------------
def test_refund_by_typo_is_refused(gw: GatewayProc) -> None:
    """Hole 8: `{"unit": 1}` (a typo) or an empty body refunds nothing; a full refund is asked for."""
    new_order(gw, "H8-1", quantity=3)
    for body in ({"unit": 1}, {}, {"reason": "rain"}, {"units": 1, "all": True}, {"all": False}):
        r = api(gw, "POST", "/api/orders/H8-1/refund", json=body)
        assert r.status_code == 422 and shape(r)["code"] == "VALIDATION", (body, r.text)
    assert api(gw, "GET", "/api/orders/H8-1").json()["refunded"] == 0
    one = api(gw, "POST", "/api/orders/H8-1/refund", json={"units": 1, "reason": "rain"}).json()
    assert (one["refunded"], one["left"]) == (1, 2)
    rest = api(gw, "POST", "/api/orders/H8-1/refund", json={"all": True, "reason": "rain"}).json()
    assert (rest["refunded"], rest["left"], rest["status"]) == (3, 0, "refunded")


WRITES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/api/sites", {"slug": "typo", "name": "T"}),
    ("POST", "/api/orders", {"orders": [{"code": "H8-W", "title": "T"}]}),
    ("POST", "/api/redeem", {"code": "H8-1", "site": "sh", "request_id": "h8-w", "op": "check"}),
    ("POST", "/api/devices", {"device": "h8-dev", "site": "sh"}),
    ("POST", "/api/products", {"sku": "H8-P", "title": "T"}),
    ("PUT", "/api/products/H8-P", {"sku": "H8-P", "title": "T"}),
    ("POST", "/api/orders/H8-1/refund", {"units": 1}),
    ("POST", "/api/orders/H8-1/cancel", {"reason": "x"}),
    ("POST", "/api/redemptions/1/revert", {"reason": "x"}),
    ("PUT", "/api/users/nobody/pin", {"site": "sh", "pin": "1234"}),
    ("POST", "/api/fleet/devices/h8-dev/provision", {"site": "sh"}),
    ("POST", "/api/fleet/devices/h8-dev/commands", {"cmd": "beep"}),
    ("POST", "/api/fleet/sites/sh/commands", {"cmd": "beep"}),
]


@pytest.mark.parametrize(("method", "path", "body"), WRITES, ids=[f"{m} {p}" for m, p, _ in WRITES])
def test_unknown_fields_are_an_error_on_every_write(
    gw: GatewayProc, method: str, path: str, body: dict[str, Any]
) -> None:
    """Hole 8: an unknown field anywhere in a request body is refused, before anything happens."""
    for bad in ({**body, "surprise": 1}, {**body, "unit": 1}):
        r = api(gw, method, path, json=bad)
        if r.status_code == 503:  # the fleet is off with an external broker: refused before parsing
            assert shape(r)["code"] == "UNAVAILABLE"
            continue
        assert r.status_code == 422, (bad, r.text)
        err = shape(r)
        assert err["code"] == "VALIDATION" and "Extra inputs are not permitted" in err["message"], r.text
    nested = api(gw, "POST", "/api/orders", json={"orders": [{"title": "T", "rules": {"per_dai": 1}}]})
    assert nested.status_code == 422 and "rules.per_dai" in shape(nested)["message"]


# -- Hole 9 -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change",
    [{"qty": "1"}, {"qty": True}, {"qty": 1.0}, {"amt": "100"}, {"code": 12345}, {"site": ["sh"]}],
    ids=repr,
)
def test_lax_types_do_not_redeem(gw: GatewayProc, change: dict[str, Any]) -> None:
    """Hole 9: `{"qty": "1"}`, `{"qty": true}` and friends are refused, and nothing is redeemed."""
    code = "H9-" + "".join(ch for ch in repr(change) if ch.isalnum())
    new_order(gw, code)
    r = redeem(gw, {"code": code, "site": "sh", "request_id": code, **change})
    assert r.status_code == 422 and shape(r)["code"] == "VALIDATION", r.text
    assert api(gw, "GET", f"/api/orders/{code}").json()["used"] == 0


@pytest.mark.parametrize(
    "change",
    [
        {"valid_from": 0},
        {"valid_from": 1.5},
        {"valid_from": "1"},
        {"sale_from": -1},
        {"valid_days": True},
        {"valid_days": "3"},
        {"quantity": "1"},
        {"valid_until": "0001-01-01T00:00:00Z"},
        {"rules": {"per_day": True}},
        {"rules": {"passback": 1}},
    ],
    ids=repr,
)
def test_products_take_strict_types(gw: GatewayProc, change: dict[str, Any]) -> None:
    """Hole 9: product times are ISO-8601 text only (no Unix numbers), no bools where ints are meant."""
    r = api(gw, "POST", "/api/products", json={"sku": "H9-P", "title": "T", **change})
    assert r.status_code == 422 and shape(r)["code"] == "VALIDATION", r.text
    assert all(p["sku"] != "H9-P" for p in api(gw, "GET", "/api/products").json())


def test_framework_errors_have_the_one_shape(gw: GatewayProc) -> None:
    """Hole 9: FastAPI's own answers — bad JSON, wrong content type, unknown route, wrong method,
    missing body — come in the one error shape."""
    cases = [
        (
            "POST",
            "/api/orders",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            422,
        ),
        (
            "POST",
            "/api/orders",
            {"content": b'{"orders": []}', "headers": {"content-type": "text/plain"}},
            422,
        ),
        ("POST", "/api/orders", {"data": {"orders": "x"}}, 422),
        ("POST", "/api/orders", {}, 422),
        ("GET", "/api/no-such-route", {}, 404),
        ("DELETE", "/api/orders", {}, 405),
        ("POST", "/api/redeem", {"content": b"[1, 2]", "headers": {"content-type": "application/json"}}, 422),
    ]
    for method, path, kw, status in cases:
        r = api(gw, method, path, **kw)
        assert r.status_code == status, (method, path, kw, r.text)
        shape(r)
    assert shape(api(gw, "DELETE", "/api/orders"))["code"] == "METHOD_NOT_ALLOWED"
    assert shape(api(gw, "GET", "/api/no-such-route"))["code"] == "NOT_FOUND"


# -- Hole 16 (input) ----------------------------------------------------------------------------------
def test_sites_default_to_the_timezone_setting_and_naive_times_are_site_local(gw: GatewayProc) -> None:
    """Hole 16: a new site without a zone gets TIMEZONE (not Asia/Shanghai); naive order times are the
    site's local time (orders without a site: TIMEZONE); unknown zone names are refused."""
    assert api(gw, "POST", "/api/sites", json={"slug": "ny", "name": "New York"}).status_code == 201
    zones = {s["slug"]: s["timezone"] for s in api(gw, "GET", "/api/sites").json()}
    assert zones["ny"] == GATEWAY_TZ and zones["sh"] == "Asia/Shanghai"
    for tz in ("Mars/Olympus", "", "../etc/passwd", 8):
        r = api(gw, "POST", "/api/sites", json={"slug": "bad", "name": "B", "timezone": tz})
        assert r.status_code == 422 and shape(r)["code"] == "VALIDATION", tz
    naive = "2030-06-01T09:00:00"
    local = datetime(2030, 6, 1, 9, 0)
    for code, site, zone in (
        ("H16-SH", "sh", "Asia/Shanghai"),
        ("H16-NY", "ny", GATEWAY_TZ),
        ("H16-0", None, GATEWAY_TZ),
    ):
        order = {"code": code, "title": "T", "site": site, "valid_from": naive}
        assert api(gw, "POST", "/api/orders", json={"orders": [order]}).status_code == 201
        got = api(gw, "GET", f"/api/orders/{code}").json()["valid_from"]
        assert got == local.replace(tzinfo=ZoneInfo(zone)).timestamp(), code
    # An offset names the instant, whatever the site's zone.
    new_order(gw, "H16-OFF", valid_from="2030-06-01T09:00:00+00:00")
    assert (
        api(gw, "GET", "/api/orders/H16-OFF").json()["valid_from"]
        == local.replace(tzinfo=ZoneInfo("UTC")).timestamp()
    )
    # CSV import: the same rule, row by row.
    text = f"code,title,site,valid_from\nH16-CSV,T,sh,{naive}\n"
    r = api(gw, "POST", "/api/orders/import", content=text.encode(), headers={"content-type": "text/csv"})
    assert r.json()["created"] == 1, r.text
    got = api(gw, "GET", "/api/orders/H16-CSV").json()["valid_from"]
    assert got == local.replace(tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()


# -- Hole 12 (REST) -----------------------------------------------------------------------------------
def test_rest_redeem_needs_an_explicit_idempotency_key(gw: GatewayProc) -> None:
    """Hole 12: a redeem without request_id / Idempotency-Key is refused (a retry after a 503 could
    otherwise redeem twice); the header works as the key; header and body must agree; check needs none."""
    new_order(gw, "H12-1", quantity=5)
    r = redeem(gw, {"code": "H12-1", "site": "sh"})
    assert r.status_code == 422 and "request_id" in shape(r)["message"]
    assert api(gw, "GET", "/api/orders/H12-1").json()["used"] == 0
    check = redeem(gw, {"code": "H12-1", "site": "sh", "op": "check"})
    assert check.status_code == 200 and check.json()["ok"], check.text
    first = redeem(gw, {"code": "H12-1", "site": "sh"}, headers={"Idempotency-Key": "h12-a"}).json()
    again = redeem(gw, {"code": "H12-1", "site": "sh"}, headers={"Idempotency-Key": "h12-a"}).json()
    assert first["ok"] and again == first
    same = redeem(
        gw, {"code": "H12-1", "site": "sh", "request_id": "h12-a"}, headers={"Idempotency-Key": "h12-a"}
    )
    assert same.json() == first
    clash = redeem(
        gw, {"code": "H12-1", "site": "sh", "request_id": "h12-b"}, headers={"Idempotency-Key": "h12-c"}
    )
    assert clash.status_code == 422 and shape(clash)["code"] == "VALIDATION"
    bad_key = redeem(gw, {"code": "H12-1", "site": "sh"}, headers={"Idempotency-Key": "no spaces!"})
    assert bad_key.status_code == 422
    assert api(gw, "GET", "/api/orders/H12-1").json()["used"] == 1


def test_redeem_typed_does_not_block_the_event_loop(tmp_path: Path) -> None:
    """Hole 12: a typed redemption never blocks the event loop: with the service queue full it answers
    503 UNAVAILABLE (retry with the same key) instead of waiting in a queue put on the loop, and while
    it waits for a verdict other work on the loop goes on."""
    engine = make_engine(f"sqlite:///{tmp_path / 'loop.db'}")
    migrate(engine)
    create_site(SqlDatabase(engine), SiteIn(slug="s", name="S", timezone="UTC"))
    # A real service that is not started: nothing is decided, so nothing ever answers.
    full = RedemptionService(
        SqlDatabase(engine), SqlWriter(engine), mqtt_transport(lambda topic, payload: None), queue_max=1
    )
    full.q.put(None)  # its one place is taken: a blocking put() would wait forever
    idle = RedemptionService(
        SqlDatabase(engine), SqlWriter(engine), mqtt_transport(lambda topic, payload: None)
    )
    result: dict[str, Any] = {}

    async def attempt(service: RedemptionService, key: str) -> tuple[Exception | None, int]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        rt = cast(Runtime, SimpleNamespace(db=SqlDatabase(engine), service=service, guard=TypedGuard()))
        try:
            await redeem_typed(rt, RedeemIn(code="X", site="s", request_id=key), "127.0.0.1", timeout=1.0)
            return None, ticks
        except Exception as err:
            return err, ticks
        finally:
            task.cancel()

    async def main() -> None:
        result["full"] = await attempt(full, "loop-1")
        result["idle"] = await attempt(idle, "loop-2")

    runner = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    runner.start()
    runner.join(30)  # an upper bound for a hung loop, not a speed check
    blocked = runner.is_alive()
    if blocked:  # let a blocked put() through so the thread can end
        full.q.get_nowait()
        runner.join(30)
    assert not blocked, "the event loop was blocked by the queue put"
    assert isinstance(result["full"][0], Unavailable)
    err, ticks = result["idle"]
    assert isinstance(err, Unavailable) and err.http_status == 503
    assert ticks > 1  # the loop ran other work while the redemption waited for its verdict
    engine.dispose()


# -- Hole 18 ------------------------------------------------------------------------------------------
def test_huge_numbers_and_filename_less_uploads_are_422(gw: GatewayProc) -> None:
    """Hole 18: `offset=10**30` (OverflowError) and a multipart `file` part without a filename
    ("Stream consumed") answered 500; both are a clear 422 now."""
    for params in ({"offset": "9" * 30}, {"limit": "9" * 30}, {"since": "nan"}, {"until": "1e999"}):
        r = api(gw, "GET", "/api/redemptions", params=params)
        assert r.status_code == 422 and shape(r)["code"] == "VALIDATION", (params, r.text)
    r = api(gw, "POST", "/api/redemptions/" + "9" * 30 + "/revert", json={"reason": "x"})
    assert r.status_code == 422 and shape(r)["code"] == "VALIDATION"
    csv_text = b"code,title\nH18-1,T\n"
    no_name = api(
        gw, "POST", "/api/orders/import", files={"file": (None, csv_text, "text/csv")}
    )  # a plain form field
    assert no_name.status_code == 422 and shape(no_name)["code"] == "VALIDATION", no_name.text
    other = api(gw, "POST", "/api/orders/import", files={"upload": ("o.csv", csv_text, "text/csv")})
    assert other.status_code == 422 and "file" in shape(other)["message"]
    ok = api(gw, "POST", "/api/orders/import", files={"file": ("o.csv", csv_text, "text/csv")})
    assert ok.status_code == 200 and ok.json()["created"] == 1, ok.text


def _hidden(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert m, f"no hidden {name} in the page"
    return m.group(1)


def test_console_redeem_form_carries_one_key_per_render(gw: GatewayProc) -> None:
    """Hole 12: the console's Redeem form makes its idempotency key when it is shown: a double submit
    of one form redeems once, and a post without a key redeems nothing."""
    engine = make_engine(f"sqlite:///{gw.db_path}")
    create_user(SqlDatabase(engine), "desk", "desk-secret-1", "verifier", ["sh"])
    engine.dispose()
    new_order(gw, "H12-FORM", quantity=5)
    with httpx.Client(base_url=gw.http, timeout=15) as web:
        login = web.get("/console/login")
        r = web.post(
            "/console/login",
            data={"name": "desk", "password": "desk-secret-1", "csrf": _hidden(login.text, "csrf")},
        )
        assert r.status_code == 303, r.text
        shown = web.get("/console/redeem", params={"code": "H12-FORM", "site": "sh"}).text
        form = {k: _hidden(shown, k) for k in ("csrf", "code", "site", "request_id")}
        for _ in range(2):  # a double click
            assert web.post("/console/redeem", data={**form, "qty": "2"}).status_code == 200
        assert api(gw, "GET", "/api/orders/H12-FORM").json()["used"] == 2
        keyless = {k: v for k, v in form.items() if k != "request_id"}
        r = web.post("/console/redeem", data={**keyless, "qty": "1"})
        assert r.status_code == 422
        for qty in ("1_0", " +1", "१"):  # int() would take these
            assert (
                web.post("/console/redeem", data={**form, "request_id": "other", "qty": qty}).status_code
                == 422
            )
    assert api(gw, "GET", "/api/orders/H12-FORM").json()["used"] == 2
