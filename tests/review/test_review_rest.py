# Review: REST idempotency and input probes against a real gateway process (each break found is fixed).
from __future__ import annotations

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

TOK: dict[str, str] = {}


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProc]:
    tmp: Path = tmp_path_factory.mktemp("review")
    broker = Mosquitto(workdir=tmp / "broker")
    broker.start()
    g = GatewayProc(broker.url, tmp / "r.db", tmp / "var").start()
    engine = make_engine(f"sqlite:///{g.db_path}")
    for name in ("alice", "bob"):
        create_user(SqlDatabase(engine), name, name + "-secret-1", "owner")
        TOK[name] = "Bearer " + issue_api_token(SqlDatabase(engine), name)
    engine.dispose()
    r = g.api("POST", "/api/sites", json={"slug": "sh", "name": "S", "timezone": "Asia/Shanghai"})
    assert r.status_code == 201, r.text
    yield g
    g.stop()
    broker.stop()


def api(gw: GatewayProc, who: str | None, method: str, path: str, **kw: Any) -> httpx.Response:
    headers = {"authorization": TOK[who]} if who else {}
    return gw.api(method, path, headers={**headers, **kw.pop("headers", {})}, **kw)


def order(gw: GatewayProc, code: str, qty: int = 3) -> None:
    r = api(
        gw,
        "alice",
        "POST",
        "/api/orders",
        json={"orders": [{"code": code, "title": "T", "quantity": qty, "site": "sh"}]},
    )
    assert r.status_code == 201, r.text


def used(gw: GatewayProc, code: str) -> int:
    return int(api(gw, "alice", "GET", f"/api/orders/{code}").json()["used"])


def redeem(gw: GatewayProc, who: str | None, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    r = api(gw, who, "POST", "/api/redeem", json={"site": "sh", **body}, **kw)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_same_key_other_body_is_refused_not_redeemed(gw: GatewayProc) -> None:
    """Hole 1/12: a key reused with another qty/code is SID_REUSED and redeems nothing more."""
    order(gw, "RV-A")
    order(gw, "RV-B")
    assert redeem(gw, "alice", {"code": "RV-A", "request_id": "k1"})["ok"]
    assert redeem(gw, "alice", {"code": "RV-A", "request_id": "k1"})["ok"]  # retry: replay
    assert redeem(gw, "alice", {"code": "RV-A", "qty": 2, "request_id": "k1"})["reason"] == "SID_REUSED"
    assert redeem(gw, "alice", {"code": "RV-B"}, headers={"Idempotency-Key": "k1"})["reason"] == "SID_REUSED"
    assert (used(gw, "RV-A"), used(gw, "RV-B")) == (1, 0)


def test_two_users_same_key_do_not_collide(gw: GatewayProc) -> None:
    """Hole 2: alice's and bob's request_id K live in separate key spaces."""
    order(gw, "RV-C")
    order(gw, "RV-D")
    assert redeem(gw, "alice", {"code": "RV-C", "request_id": "same"})["ok"]
    assert redeem(gw, "bob", {"code": "RV-D", "request_id": "same"})["ok"]
    assert (used(gw, "RV-C"), used(gw, "RV-D")) == (1, 1)


def test_local_token_by_field_reaches_a_users_key_space(gw: GatewayProc) -> None:
    """Hole 2: a caller with the local token who names `by` must never land in alice's key space
    u:alice/<id> (replaying her verdicts, SID_REUSED-blocking her retries), nor be recorded as her."""
    order(gw, "RV-E")
    order(gw, "RV-F")
    redeem(gw, "alice", {"code": "RV-E", "request_id": "mine"})
    v = redeem(gw, None, {"code": "RV-F", "request_id": "mine", "by": "alice"})  # None: the local token
    assert v["reason"] != "SID_REUSED", "the local token collided with alice's key"
    rows = api(gw, "alice", "GET", "/api/redemptions", params={"code": "RV-F"}).json()["items"]
    assert [r["device"] for r in rows] == ["web-local"]


def test_check_then_redeem_same_key(gw: GatewayProc) -> None:
    """Hole 3: a check with request_id R is not stored; the redeem with R redeems once."""
    order(gw, "RV-G")
    assert redeem(gw, "alice", {"code": "RV-G", "op": "check", "request_id": "ck"})["ok"]
    assert redeem(gw, "alice", {"code": "RV-G", "request_id": "ck"})["ok"]
    assert used(gw, "RV-G") == 1


@pytest.mark.parametrize(
    "body", [{"units": 1.0}, {"units": "1"}, {"units": True}, {"all": 1}, {"units": 0}, {"units": -1}, {}]
)
def test_refund_lax_bodies_refund_nothing(gw: GatewayProc, body: dict[str, Any]) -> None:
    """Hole 8/9: no coercion, no implicit full refund."""
    code = "RV-R" + str(abs(hash(str(body))) % 10_000)
    order(gw, code)
    r = api(gw, "alice", "POST", f"/api/orders/{code}/refund", json=body)
    assert r.status_code == 422, r.text
    assert set(r.json()["error"]) == {"code", "message", "details"}
    assert api(gw, "alice", "GET", f"/api/orders/{code}").json().get("refunded", 0) == 0


def test_csv_bom_duplicates_bad_rows(gw: GatewayProc) -> None:
    """CSV: a BOM header is read; duplicate codes and bad rows are reported, not created twice."""
    csv = "\ufeffcode,title,quantity,site\nCSV-1,T,1,sh\nCSV-1,T,1,sh\nCSV-2,T,x,sh\nCSV-3,T,1,nosuch\n"
    r = api(
        gw, "alice", "POST", "/api/orders/import", content=csv.encode(), headers={"content-type": "text/csv"}
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["created"] == 1 and len(out["errors"]) == 3, out


@pytest.mark.parametrize(
    "q",
    [
        "offset=-1",
        "limit=0",
        "limit=100000000000000000000",
        "since=2026-01-01T00:00:00",
        "since=0001-01-01T00:00:00%2B14:00",
    ],
)
def test_redemptions_query_never_500(gw: GatewayProc, q: str) -> None:
    r = api(gw, "alice", "GET", "/api/redemptions?" + q)
    assert r.status_code in (200, 422), r.text
    if r.status_code == 422:
        assert set(r.json()["error"]) == {"code", "message", "details"}
