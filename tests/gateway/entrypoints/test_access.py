# REST access control: API tokens by role, site scope, CSRF for browser sessions.
from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.adapters.brokers.mosquitto import Mosquitto
from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.services.accounts import create_session, create_user, issue_api_token
from tests.conftest import GatewayProc


@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayProc, dict[str, str]]]:
    tmp: Path = tmp_path_factory.mktemp("access")
    broker = Mosquitto(workdir=tmp / "broker")
    broker.start()
    g = GatewayProc(broker.url, tmp / "a.db", tmp / "var").start()
    e = make_engine(f"sqlite:///{tmp / 'a.db'}")
    create_user(SqlDatabase(e), "boss", "boss-password-1", "owner")
    tokens = {"owner": issue_api_token(SqlDatabase(e), "boss")}
    auth = {"Authorization": f"Bearer {tokens['owner']}"}
    for slug in ("east", "west"):
        assert g.api("POST", "/api/sites", json={"slug": slug, "name": slug}, headers=auth).status_code == 201
    for role in ("manager", "supervisor", "verifier"):
        create_user(SqlDatabase(e), f"{role}1", "a-long-password", role, ["east"])
        tokens[role] = issue_api_token(SqlDatabase(e), f"{role}1")
    s = create_session(SqlDatabase(e), 1)
    tokens["cookie"], tokens["csrf"] = s.cookie, s.csrf
    e.dispose()
    yield g, tokens
    g.stop()
    broker.stop()


def call(g: GatewayProc, method: str, path: str, token: str | None = None, **kw: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return g.api(method, path, local=False, headers=headers, **kw)  # type: ignore[arg-type]


def test_no_credentials_no_access(locked: tuple[GatewayProc, dict[str, str]]) -> None:
    g, _ = locked
    assert call(g, "GET", "/api/health").status_code == 200  # health stays open for monitors
    r = call(g, "POST", "/api/orders", json={"orders": [{"title": "x"}]})
    assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHENTICATED"
    assert call(g, "GET", "/api/redemptions", "hxt_not_a_real_token").status_code == 401


def test_roles_are_a_ladder(locked: tuple[GatewayProc, dict[str, str]]) -> None:
    g, t = locked
    made = call(
        g,
        "POST",
        "/api/orders",
        t["manager"],
        json={"orders": [{"code": "AC-1", "title": "x", "quantity": 3, "site": "east"}]},
    )
    assert made.status_code == 201
    denied = call(g, "POST", "/api/orders", t["supervisor"], json={"orders": [{"title": "x"}]})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "FORBIDDEN"
    assert call(g, "GET", "/api/redemptions", t["verifier"]).status_code == 403  # verifiers see no lists
    assert call(g, "GET", "/api/redemptions", t["supervisor"]).status_code == 200
    assert call(g, "POST", "/api/sites", t["manager"], json={"slug": "north", "name": "n"}).status_code == 403


def test_verifier_redeems_only_at_own_site_and_is_recorded(
    locked: tuple[GatewayProc, dict[str, str]],
) -> None:
    g, t = locked
    call(
        g, "POST", "/api/orders", t["owner"], json={"orders": [{"code": "AC-2", "title": "x", "quantity": 2}]}
    )
    ok = call(
        g,
        "POST",
        "/api/redeem",
        t["verifier"],
        json={"request_id": secrets.token_hex(8), "code": "AC-2", "site": "east", "by": "someone-else"},
    )
    assert ok.json()["ok"]
    west = call(
        g,
        "POST",
        "/api/redeem",
        t["verifier"],
        json={"request_id": secrets.token_hex(8), "code": "AC-2", "site": "west"},
    )
    assert west.status_code == 403
    rows = call(g, "GET", "/api/redemptions", t["owner"], params={"code": "AC-2"}).json()["items"]
    assert [r["device"] for r in rows] == ["web-verifier1"]  # recorded as the caller, not as claimed
    assert call(g, "GET", "/api/orders/AC-2", t["owner"]).json()["used"] == 1


def test_site_scope_of_lists(locked: tuple[GatewayProc, dict[str, str]]) -> None:
    g, t = locked
    call(
        g, "POST", "/api/orders", t["owner"], json={"orders": [{"code": "AC-3", "title": "x", "quantity": 5}]}
    )
    call(
        g,
        "POST",
        "/api/redeem",
        t["owner"],
        json={"request_id": secrets.token_hex(8), "code": "AC-3", "site": "west"},
    )
    call(
        g,
        "POST",
        "/api/redeem",
        t["owner"],
        json={"request_id": secrets.token_hex(8), "code": "AC-3", "site": "east"},
    )
    sup = call(g, "GET", "/api/redemptions", t["supervisor"], params={"code": "AC-3"}).json()["items"]
    assert {r["site"] for r in sup} == {"east"}
    assert len(call(g, "GET", "/api/redemptions", t["owner"], params={"code": "AC-3"}).json()["items"]) == 2


def test_browser_sessions_need_csrf_for_changes(locked: tuple[GatewayProc, dict[str, str]]) -> None:
    g, t = locked
    cookies = {"hx_session": t["cookie"]}
    assert httpx.get(g.http + "/api/redemptions", cookies=cookies).status_code == 200
    body = {"orders": [{"code": "AC-4", "title": "x"}]}
    no = httpx.post(g.http + "/api/orders", json=body, cookies=cookies)
    assert no.status_code == 403
    yes = httpx.post(g.http + "/api/orders", json=body, cookies=cookies, headers={"X-CSRF-Token": t["csrf"]})
    assert yes.status_code == 201


def test_fleet_routes_take_the_same_csrf_rule(locked: tuple[GatewayProc, dict[str, str]]) -> None:
    """The fleet's state changes go through the one auth dependency: a browser session without its
    X-CSRF-Token is refused in the one error shape, with it (or with an API token) the command goes out."""
    g, t = locked
    cookies = {"hx_session": t["cookie"]}
    url = g.http + "/api/fleet/sites/east/commands"
    no = httpx.post(url, json={"cmd": "status"}, cookies=cookies)
    assert no.status_code == 403 and no.json()["error"]["code"] == "FORBIDDEN"
    yes = httpx.post(url, json={"cmd": "status"}, cookies=cookies, headers={"X-CSRF-Token": t["csrf"]})
    assert yes.status_code == 200, yes.text
    assert (
        call(g, "POST", "/api/fleet/sites/east/commands", t["manager"], json={"cmd": "status"}).status_code
        == 200
    )
    # Supervisors may look at the fleet but not command it.
    assert (
        call(g, "POST", "/api/fleet/sites/east/commands", t["supervisor"], json={"cmd": "status"}).status_code
        == 403
    )
    assert call(g, "GET", "/api/fleet/devices", t["supervisor"]).status_code == 200
