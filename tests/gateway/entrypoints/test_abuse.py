# Abuse limits: typed codes rate-limited per caller and per source, guesses audited with an alarm, sign-in
# back-off per source, auto-registration bounded.
from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.adapters.brokers.mosquitto import Mosquitto
from gateway.adapters.db.engine import make_engine, migrate
from gateway.adapters.db.repositories.database import SqlDatabase, SqlTx
from gateway.config import Settings
from gateway.services.accounts import create_user, issue_api_token
from gateway.services.places import PlaceCache
from tests.conftest import GatewayProc
from tests.gateway.mqtt_peer import Peer

PASSWORD = "a-long-password"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayProc, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("abuse")
    broker = Mosquitto(workdir=tmp / "broker")
    broker.start()
    env = {"TYPED_RATE_PER_S": "0.05", "GUESS_LIMIT": "3", "OWNER_PASSWORD": "owner-password-1"}
    g = GatewayProc(broker.url, tmp / "ab.db", tmp / "var", env=env)
    del g.env["AUTO_REGISTER_SITE"]  # the product's default: no auto-registration without DEMO
    g.start()
    assert g.api("POST", "/api/sites", json={"slug": "s1", "name": "S"}).status_code == 201
    r = g.api(
        "POST", "/api/orders", json={"orders": [{"code": "AB-1", "title": "T", "quantity": 99, "site": "s1"}]}
    )
    assert r.status_code == 201
    e = make_engine(f"sqlite:///{g.db_path}")
    tokens = {}
    for name in ("va", "vb", "vc", "vd", "ve"):
        create_user(SqlDatabase(e), name, PASSWORD, "verifier", ["s1"])
        tokens[name] = issue_api_token(SqlDatabase(e), name)
    e.dispose()
    yield g, tokens
    g.stop()
    broker.stop()


def client(source: str = "127.0.0.1") -> httpx.Client:
    """A client whose requests come from `source` (any 127.x address reaches the gateway on 127.0.0.1)."""
    return httpx.Client(
        transport=httpx.HTTPTransport(local_address=source), timeout=15, follow_redirects=False
    )


def check(g: GatewayProc, token: str, code: str = "AB-1", source: str = "127.0.0.1") -> httpx.Response:
    with client(source) as c:
        return c.post(
            g.http + "/api/redeem",
            json={"code": code, "site": "s1", "op": "check"},
            headers={"authorization": f"Bearer {token}"},
        )


def audit(g: GatewayProc) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(g.db_path)
    try:
        return con.execute("SELECT actor, action, reason FROM audit WHERE action = 'code_miss'").fetchall()
    finally:
        con.close()


def test_checks_are_limited_per_caller_and_per_source(gw: tuple[GatewayProc, dict[str, str]]) -> None:
    g, t = gw
    # One a caller's burst (0.05/s: a burst of 1), two from one address (twice the caller's).
    assert check(g, t["va"], source="127.0.0.2").json()["ok"]
    r = check(g, t["va"], source="127.0.0.2")
    assert r.status_code == 429 and r.json()["error"]["code"] == "RATE_LIMITED"
    assert check(g, t["vb"], source="127.0.0.2").status_code == 200  # another caller: its own bucket
    r = check(g, t["vc"], source="127.0.0.2")  # a third caller, but the address has spent its burst
    assert r.status_code == 429 and r.json()["error"]["code"] == "RATE_LIMITED"
    assert check(g, t["vc"], source="127.0.0.3").status_code == 200  # elsewhere vc is fine
    assert g.api("GET", "/api/orders/AB-1").json()["used"] == 0


def test_unknown_codes_are_audited_and_a_burst_raises_the_alarm(
    gw: tuple[GatewayProc, dict[str, str]],
) -> None:
    g, t = gw
    v = check(g, t["vd"], code="AB-NOPE-1", source="127.0.0.4").json()
    assert v["reason"] == "UNKNOWN_CODE"
    assert ("vd", "code_miss", "check from 127.0.0.4: AB-NOPE-1") in audit(g)
    # Look-ups by code cost no rate tokens, but their misses count: three in a minute is the limit here.
    with client("127.0.0.5") as c:
        auth = {"authorization": f"Bearer {t['ve']}"}
        for i in range(2):
            assert c.get(f"{g.http}/api/orders/GUESS-{i}", headers=auth).status_code == 404
        assert not [a for a in g.api("GET", "/api/fleet/alarms").json() if a["kind"] == "guessing"]
        assert c.get(f"{g.http}/api/orders/GUESS-2", headers=auth).status_code == 404
        paused = c.get(f"{g.http}/api/orders/AB-1", headers=auth)  # even a good code, for the minute
        assert paused.status_code == 429 and paused.json()["error"]["code"] == "RATE_LIMITED"
    alarms = [a for a in g.api("GET", "/api/fleet/alarms").json() if a["kind"] == "guessing"]
    assert [a["device"] for a in alarms] == ["web-ve"]
    assert sum(1 for actor, _, _ in audit(g) if actor == "ve") == 3
    # A code in a console URL is a typed code too (the local token's misses are audited, not limited).
    assert g.api("GET", "/console/orders/CONSOLE-NOPE").status_code == 404
    assert ("local", "code_miss", "lookup from 127.0.0.1: CONSOLE-NOPE") in audit(g)


def sign_in(c: httpx.Client, g: GatewayProc, name: str, password: str, **headers: str) -> httpx.Response:
    page = c.get(g.http + "/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token
    form = {"name": name, "password": password, "csrf": token.group(1)}
    return c.post(g.http + "/console/login", data=form, headers=headers)


def test_a_stranger_cannot_lock_the_owner_out(gw: tuple[GatewayProc, dict[str, str]]) -> None:
    g, _ = gw
    with client("127.0.0.6") as stranger:
        for i in range(5):
            # A made-up X-Forwarded-For is no way round the back-off: no proxy is configured.
            r = sign_in(stranger, g, "owner", "guess-guess", **{"x-forwarded-for": f"10.9.9.{i}"})
            assert r.status_code == 401
        assert sign_in(stranger, g, "owner", "owner-password-1").status_code == 429  # backed off
    with client("127.0.0.1") as owner:
        assert sign_in(owner, g, "owner", "owner-password-1").status_code == 303


def test_an_unknown_device_is_refused_without_demo(gw: tuple[GatewayProc, dict[str, str]]) -> None:
    g, _ = gw
    dev = Peer(g.mqtt_url, "minted-1")
    try:
        dev.scan("s1", "AB-1")
        assert dev.wait_verdict("s1")["reason"] == "UNKNOWN_DEVICE"
    finally:
        dev.close()
    assert g.api("GET", "/api/devices").json() == []
    assert g.api("GET", "/api/orders/AB-1").json()["used"] == 0


def test_auto_registration_is_off_without_demo_and_bounded(tmp_path: Path) -> None:
    assert Settings(demo=False).auto_site == ""
    assert Settings(demo=True).auto_site == "demo"
    assert Settings(demo=False, auto_register_site="shop").auto_site == "shop"
    e = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    migrate(e)
    places = PlaceCache("shop", "UTC", per_minute=1, burst=2)  # (the registration limit itself)
    with e.connect() as c:
        got = [places.get(SqlTx(c), f"mint-{i}", 0.0) for i in range(4)]
    assert [p is not None for p in got] == [True, True, False, False]  # minted ids stop after the burst


def test_chosen_codes_taken_at_another_site_are_misses(gw: tuple[GatewayProc, dict[str, str]]) -> None:
    """An "already exists" answer tells that a code of another site exists: each such code is audited
    as a miss, and after GUESS_LIMIT the creator is paused like any guesser."""
    g, _ = gw
    assert g.api("POST", "/api/sites", json={"slug": "s9", "name": "S9"}).status_code in (201, 409)
    mine = [{"code": f"AB-TAKEN-{i}", "title": "T", "site": "s1"} for i in range(3)]
    assert g.api("POST", "/api/orders", json={"orders": mine}).status_code == 201
    e = make_engine(f"sqlite:///{g.db_path}")
    create_user(SqlDatabase(e), "m9", PASSWORD, "manager", ["s9"])
    auth = {"authorization": "Bearer " + issue_api_token(SqlDatabase(e), "m9")}
    e.dispose()
    with client("127.0.0.79") as c:
        one = {"orders": [{"code": "AB-TAKEN-0", "title": "T", "site": "s9"}]}
        assert c.post(g.http + "/api/orders", json=one, headers=auth).status_code == 409
        assert sum(a[0] == "m9" for a in audit(g)) == 1
        csv = "code,title,site\nAB-TAKEN-1,T,s9\nAB-TAKEN-2,T,s9\nAB-FRESH-9,T,s9\n"
        r = c.post(g.http + "/api/orders/import", content=csv, headers={**auth, "content-type": "text/csv"})
        assert r.json()["already_existed"] == 2 and sum(a[0] == "m9" for a in audit(g)) == 3, r.text
        fresh = {"orders": [{"code": "AB-FRESH-10", "title": "T", "site": "s9"}]}
        assert c.post(g.http + "/api/orders", json=fresh, headers=auth).status_code == 429  # paused


def test_pin_conflicts_are_audited_and_bounded(gw: tuple[GatewayProc, dict[str, str]]) -> None:
    """A 409 on setting a PIN tells that someone at the site has it: each is a miss (without the PIN
    in the audit), and after GUESS_LIMIT the caller may not try PINs for the rest of the minute."""
    g, _ = gw
    assert g.api("PUT", "/api/users/va/pin", json={"site": "s1", "pin": "4821"}).status_code == 204
    e = make_engine(f"sqlite:///{g.db_path}")
    create_user(SqlDatabase(e), "mp", PASSWORD, "manager", ["s1"])
    auth = {"authorization": "Bearer " + issue_api_token(SqlDatabase(e), "mp")}
    e.dispose()
    with client("127.0.0.81") as c:

        def put(pin: str) -> httpx.Response:
            return c.put(g.http + "/api/users/mp/pin", json={"site": "s1", "pin": pin}, headers=auth)

        assert [put("4821").status_code for _ in range(3)] == [409, 409, 409]
        assert put("7777").status_code == 429  # paused: no more PIN tries this minute
    rows = [a for a in audit(g) if a[0] == "mp"]
    assert len(rows) == 3 and all("4821" not in a[2] and "PIN in use at s1" in a[2] for a in rows), rows
