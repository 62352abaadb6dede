# REST API against a real gateway process: orders (JSON, CSV), lookup, typed redemption, ledger, errors.
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.adapters.brokers.mosquitto import Mosquitto
from tests.conftest import GatewayProc


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProc]:
    tmp: Path = tmp_path_factory.mktemp("api")
    broker = Mosquitto(workdir=tmp / "broker")
    broker.start()
    g = GatewayProc(broker.url, tmp / "api.db", tmp / "var").start()
    assert (
        g.api(
            "POST", "/api/sites", json={"slug": "shop", "name": "Shop", "timezone": "Asia/Shanghai"}
        ).status_code
        == 201
    )
    assert g.api("POST", "/api/sites", json={"slug": "mall", "name": "Mall"}).status_code == 201
    yield g
    g.stop()
    broker.stop()


def error_code(r: object) -> str:
    return str(r.json()["error"]["code"])  # type: ignore[attr-defined]


def test_health_reports_db_and_broker(gw: GatewayProc) -> None:
    h = gw.api("GET", "/api/health").json()
    assert h["ok"] and h["db"] == "ok" and h["mqtt"]["connected"] and h["mqtt"]["broker_kind"] == "external"


def test_openapi_docs_are_served(gw: GatewayProc) -> None:
    assert gw.api("GET", "/docs").status_code == 200
    paths = gw.api("GET", "/openapi.json").json()["paths"]
    assert {
        "/api/orders",
        "/api/redeem",
        "/api/redemptions",
        "/api/redemptions.csv",
        "/api/orders/import",
    } <= set(paths)


def test_create_and_look_up_orders(gw: GatewayProc) -> None:
    r = gw.api("POST", "/api/orders", json={"orders": [{"title": "Tour", "quantity": 3, "site": "shop"}]})
    assert r.status_code == 201
    code = r.json()["codes"][0]
    assert code.startswith("HX-") and len(code) == 23  # 20 random symbols of 32 = 100 bits
    o = gw.api("GET", f"/api/orders/{code}").json()
    assert (o["title"], o["quantity"], o["left"], o["site"], o["status"]) == ("Tour", 3, 3, "shop", "active")
    assert gw.api("GET", f"/api/orders/{code}/qr.png").content[:4] == b"\x89PNG"
    assert b"<svg" in gw.api("GET", f"/api/orders/{code}/qr.svg").content


def test_bad_orders_are_refused_and_create_nothing(gw: GatewayProc) -> None:
    before = gw.api("GET", "/api/redemptions").json()["total"]
    cases = [
        ({"orders": [{"title": "", "quantity": 1}]}, "VALIDATION"),
        ({"orders": [{"title": "A", "quantity": 0}]}, "VALIDATION"),
        ({"orders": [{"title": "A", "site": "nowhere"}]}, "VALIDATION"),
        (
            {
                "orders": [
                    {
                        "title": "A",
                        "valid_from": "2026-02-01T00:00:00Z",
                        "valid_until": "2026-01-01T00:00:00Z",
                    }
                ]
            },
            "VALIDATION",
        ),
        ({"orders": [{"title": "A", "code": "bad\u0001code"}]}, "VALIDATION"),
        ({"orders": [{"title": "A", "surprise": 1}]}, "VALIDATION"),
        ({"orders": []}, "VALIDATION"),
        ({"orders": [{"code": "DUP-1", "title": "A"}, {"code": "DUP-1", "title": "B"}]}, "CONFLICT"),
    ]
    for body, code in cases:
        r = gw.api("POST", "/api/orders", json=body)
        assert r.status_code in (409, 422), (body, r.text)
        assert error_code(r) == code, body
        assert r.json()["error"]["message"]
    assert gw.api("GET", "/api/orders/DUP-1").status_code == 404
    assert (
        gw.api("POST", "/api/orders", json={"orders": [{"code": "ONCE-1", "title": "A"}]}).status_code == 201
    )
    again = gw.api(
        "POST",
        "/api/orders",
        json={"orders": [{"code": "NEW-9", "title": "A"}, {"code": "ONCE-1", "title": "B"}]},
    )
    assert (
        again.status_code == 409 and gw.api("GET", "/api/orders/NEW-9").status_code == 404
    )  # all or nothing
    assert gw.api("GET", "/api/redemptions").json()["total"] == before
    r = gw.api("POST", "/api/orders", content=b"not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and error_code(r) == "VALIDATION"


def test_csv_import_reports_each_bad_row(gw: GatewayProc) -> None:
    text = (
        "code,title,quantity,site,valid_until\n"
        "CSV-1,Spa,5,shop,2099-01-01T00:00:00+08:00\n"
        "CSV-2,,1,shop,\n"  # line 3: no title
        "CSV-3,Wash,many,,\n"  # line 4: bad quantity
        "CSV-4,Park,1,atlantis,\n"  # line 5: unknown site
        "CSV-1,Spa again,1,,\n"  # line 6: duplicate in file
        "CSV-5,Boat,2,,\n"
    )
    r = gw.api("POST", "/api/orders/import", content=text.encode(), headers={"content-type": "text/csv"})
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["created"] == 2
    assert [(e["line"], e["field"]) for e in rep["errors"]] == [
        (3, "title"),
        (4, "quantity"),
        (5, "site"),
        (6, "code"),
    ]
    again = gw.api("POST", "/api/orders/import", files={"file": ("o.csv", text.encode(), "text/csv")}).json()
    assert again["created"] == 0 and again["already_existed"] == 2
    bad = gw.api(
        "POST", "/api/orders/import", content=b"name,price\nx,1\n", headers={"content-type": "text/csv"}
    )
    assert bad.status_code == 422 and error_code(bad) == "VALIDATION"
    assert gw.api("GET", "/api/orders/CSV-1").json()["quantity"] == 5


def test_unknown_order_is_404(gw: GatewayProc) -> None:
    r = gw.api("GET", "/api/orders/NOPE-404")
    assert r.status_code == 404 and error_code(r) == "NOT_FOUND"


def test_typed_redemption_follows_the_same_rules(gw: GatewayProc) -> None:
    gw.api(
        "POST",
        "/api/orders",
        json={"orders": [{"code": "R-1", "title": "Pack", "quantity": 3, "site": "shop"}]},
    )
    ok = gw.api(
        "POST", "/api/redeem", json={"code": "R-1", "qty": 2, "site": "shop", "request_id": "req-1"}
    ).json()
    assert (ok["ok"], ok["reason"], ok["left"]) == (True, "OK", 1)
    same = gw.api(
        "POST", "/api/redeem", json={"code": "R-1", "qty": 2, "site": "shop", "request_id": "req-1"}
    ).json()
    assert same == ok  # idempotent by request_id
    too_many = gw.api(
        "POST", "/api/redeem", json={"code": "R-1", "qty": 2, "site": "shop", "request_id": "req-2"}
    ).json()
    assert (too_many["reason"], too_many["left"]) == ("QTY_EXCEEDED", 1)
    wrong = gw.api("POST", "/api/redeem", json={"code": "R-1", "site": "mall", "request_id": "req-3"}).json()
    assert wrong["reason"] == "WRONG_SITE"
    assert gw.api("GET", "/api/orders/R-1").json()["used"] == 2
    for body in (
        {"code": "R-1", "site": "nowhere", "request_id": "req-4"},
        {"code": "R-1", "site": "shop", "qty": 100, "request_id": "req-5"},
        {"site": "shop", "request_id": "req-6"},
    ):
        r = gw.api("POST", "/api/redeem", json=body)
        assert r.status_code == 422 and error_code(r) == "VALIDATION", body
    assert gw.api("GET", "/api/orders/R-1").json()["used"] == 2


def test_ledger_filters_and_csv_export(gw: GatewayProc) -> None:
    gw.api("POST", "/api/orders", json={"orders": [{"code": "L-1", "title": "One", "quantity": 1}]})
    gw.api("POST", "/api/redeem", json={"code": "L-1", "site": "shop", "by": "ana", "request_id": "l-1"})
    gw.api("POST", "/api/redeem", json={"code": "L-1", "site": "shop", "by": "ana", "request_id": "l-2"})
    items = gw.api("GET", "/api/redemptions", params={"code": "L-1"}).json()["items"]
    assert [i["reason"] for i in items] == ["ALREADY_USED", "OK"]  # newest first
    # The local token's calls are recorded as `local`, whatever `by` the body claims.
    assert all(i["device"] == "web-local" and i["site"] == "shop" for i in items)
    only_ok = gw.api("GET", "/api/redemptions", params={"code": "L-1", "ok": "true"}).json()
    assert only_ok["total"] == 1
    r = gw.api("GET", "/api/redemptions.csv", params={"code": "L-1"})
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [(x["code"], x["reason"], x["ok"]) for x in rows] == [
        ("L-1", "OK", "1"),
        ("L-1", "ALREADY_USED", "0"),
    ]
    bad = gw.api("GET", "/api/redemptions", params={"limit": 0})
    assert bad.status_code == 422
