# Hostile input against every REST route of a real gateway: never a 500, every error in the one shape.
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.adapters.brokers.mosquitto import Mosquitto
from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.services.accounts import create_user, issue_api_token
from tests.conftest import GatewayProc

HUGE = "9" * 40
# Bodies for every POST/PUT/PATCH route: (content type, raw bytes).
BODIES: list[tuple[str, bytes]] = [
    ("application/json", b""),
    ("application/json", b"null"),
    ("application/json", b"[]"),
    ("application/json", b"1"),
    ("application/json", b'"text"'),
    ("application/json", b"{"),
    ("application/json", b"{}"),
    ("application/json", b"\xff\xfe{}"),
    ("application/json", b'{"a": NaN, "qty": NaN, "units": NaN}'),
    ("application/json", b'{"qty": Infinity, "units": -Infinity, "quantity": 1e999}'),
    ("application/json", f'{{"qty": {HUGE}, "units": {HUGE}, "offset": {HUGE}}}'.encode()),
    ("application/json", b'{"units": ' + b"9" * 5000 + b"}"),  # past Python's int-parsing limit
    ("application/json", b"[" * 5000 + b"]" * 5000),  # nested deeper than the JSON parser recurses
    ("application/json", b'{"a": ' * 200 + b"1" + b"}" * 200),
    (
        "application/json",
        b'{"code": 1, "site": true, "qty": "1", "reason": [], "orders": {}, "sku": null, "slug": 7,'
        b' "units": true, "all": "yes", "cmd": {}, "args": [], "pin": 1234, "device": false}',
    ),
    (
        "application/json",
        b'{"orders": [{"title": "x", "valid_from": "0001-01-01T00:00:00-05:00", "quantity": -1}],'
        b' "valid_until": "9999-12-31T23:59:59+14:00", "timezone": "Etc/GMT+99"}',
    ),
    ("text/plain", b'{"code": "x"}'),
    ("application/x-www-form-urlencoded", b"code=x&qty=1&file=x"),
    (
        "multipart/form-data; boundary=zz",
        b"--zz\r\nContent-Disposition: form-data; name=file\r\n\r\nx\r\n--zz--\r\n",
    ),
    ("multipart/form-data; boundary=zz", b"--zz\r\nbroken"),
    ("multipart/form-data", b"no boundary at all"),
    ("text/csv", b"title,quantity\nT," + HUGE.encode() + b"\nT,NaN\n\x00,1\n"),
    ("text/csv", b'title,"unterminated\n' + b"x" * 1000),
]
# Query strings for every GET route (unknown parameters are simply ignored).
QUERIES: list[dict[str, str]] = [
    {"offset": HUGE, "limit": HUGE},
    {"offset": "-1", "limit": "-1"},
    {"since": "nan", "until": "inf"},
    {"since": "1e999", "until": "-1e999"},
    {"since": "0001-01-01T00:00:00+14:00", "until": "9999-12-31"},
    {"since": "2026-13-45", "tz": "Mars/Olympus"},
    {"tz": "../../etc/passwd", "site": "x" * 500},
    {"ok": "maybe", "by": "nonsense", "days": HUGE},
    {"days": "-5", "all": "2", "device": "\x00"},
    {"code": "x" * 5000},
]
# Path parameter values put into every route with parameters.
PATH_VALUES = [HUGE, "-1", "0", "%00", "a" * 300, "%F0%9F%98%80", "..%2F..", "1.5"]
AUTH: dict[str, str] = {}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProc]:
    tmp: Path = tmp_path_factory.mktemp("hostile")
    broker = Mosquitto(workdir=tmp / "broker")
    broker.start()
    g = GatewayProc(broker.url, tmp / "h.db", tmp / "var", env={"WEBHOOK_SECRET": "s" * 32}).start()
    engine = make_engine(f"sqlite:///{g.db_path}")
    create_user(SqlDatabase(engine), "boss", "boss-secret-1", "owner")
    AUTH["authorization"] = "Bearer " + issue_api_token(SqlDatabase(engine), "boss")
    engine.dispose()
    assert g.api("POST", "/api/sites", json={"slug": "s1", "name": "S"}, headers=AUTH).status_code == 201
    yield g
    g.stop()
    broker.stop()


@pytest.fixture(scope="module")
def routes(gw: GatewayProc) -> list[tuple[str, str]]:
    paths = gw.api("GET", "/openapi.json").json()["paths"]
    found = [(m.upper(), p) for p, ops in paths.items() for m in ops if p.startswith("/api")]
    # The sweep must really reach the write routes (a broken discovery would make it pass vacuously).
    assert {
        ("POST", "/api/redeem"),
        ("POST", "/api/orders/{code}/refund"),
        ("PUT", "/api/products/{sku}"),
    } <= set(found)
    return found


def check(r: httpx.Response, what: str) -> None:
    assert r.status_code != 500, f"{what}: 500 {r.text[:300]}"
    if r.status_code >= 400:
        body = r.json()
        err = body["error"]
        assert set(body) == {"error"} and set(err) == {"code", "message", "details"}, f"{what}: {r.text}"
        assert isinstance(err["code"], str) and isinstance(err["message"], str), what
        assert isinstance(err["details"], dict), what


def fill(path: str, value: str) -> str:
    return re.sub(r"\{[^}]+\}", value, path)


@pytest.mark.parametrize(("ctype", "raw"), BODIES, ids=[f"body{i}" for i in range(len(BODIES))])
def test_hostile_bodies_never_500(
    gw: GatewayProc, routes: list[tuple[str, str]], ctype: str, raw: bytes
) -> None:
    """Hole 18: every write route answers hostile bodies (bad JSON, NaN, huge and deep values, wrong
    types and content types, broken multipart/CSV) with a clear error in the one shape, never a 500."""
    for method, path in routes:
        if method not in ("POST", "PUT", "PATCH"):
            continue
        url = fill(path, "s1")
        r = gw.api(method, url, content=raw, headers={**AUTH, "content-type": ctype})
        check(r, f"{method} {url} {ctype} {raw[:60]!r}")


@pytest.mark.parametrize("params", QUERIES, ids=[f"query{i}" for i in range(len(QUERIES))])
def test_hostile_queries_never_500(
    gw: GatewayProc, routes: list[tuple[str, str]], params: dict[str, Any]
) -> None:
    """Hole 18: huge, negative, NaN/infinite and malformed query parameters on every GET route."""
    for method, path in routes:
        if method != "GET" or path.endswith("/events"):
            continue
        url = fill(path, "s1")
        check(gw.api("GET", url, params=params, headers=AUTH), f"GET {url} {params}")


@pytest.mark.parametrize("value", PATH_VALUES, ids=[f"path{i}" for i in range(len(PATH_VALUES))])
def test_hostile_path_parameters_never_500(
    gw: GatewayProc, routes: list[tuple[str, str]], value: str
) -> None:
    """Hole 18: ids past any database integer, negative and odd path values on every route with one."""
    for method, path in routes:
        if "{" not in path:
            continue
        url = fill(path, value)
        body = {
            "reason": "x",
            "units": 1,
            "site": "s1",
            "sku": "x",
            "title": "T",
            "pin": "1234",
            "cmd": "beep",
        }
        kw: dict[str, Any] = {"json": body} if method in ("POST", "PUT") else {}
        check(gw.api(method, url, headers=AUTH, **kw), f"{method} {url}")


def test_unknown_api_routes_and_methods_have_the_shape(gw: GatewayProc) -> None:
    """Hole 18: 404 and 405 under /api answer in the one shape too (not Starlette's {"detail": ...})."""
    for method, path in (
        ("GET", "/api/nope"),
        ("POST", "/api/health"),
        ("PATCH", "/api/orders"),
        ("GET", "/api"),
    ):
        r = gw.api(method, path, headers=AUTH)
        assert r.status_code in (404, 405), (method, path, r.status_code)
        check(r, f"{method} {path}")
