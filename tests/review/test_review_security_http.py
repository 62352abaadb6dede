# Review: attacks on the HTTP security claims (site scope, abuse limits, secrets) against a real gateway.
from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import threading
import time
import zlib
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
from tests.gateway.mqtt_peer import Peer
from tests.helpers import wait_for

TOK: dict[str, str] = {}
PW = "a-long-password-1"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProc]:
    tmp: Path = tmp_path_factory.mktemp("review-sec")
    broker = Mosquitto(workdir=tmp / "broker")
    broker.start()
    g = GatewayProc(broker.url, tmp / "r.db", tmp / "var").start()
    for slug in ("east", "west"):
        r = g.api("POST", "/api/sites", json={"slug": slug, "name": slug})
        assert r.status_code == 201, r.text
    engine = make_engine(f"sqlite:///{g.db_path}")
    for name, role, sites in (
        ("boss", "owner", None),
        ("m-east", "manager", ["east"]),
        ("s-east", "supervisor", ["east"]),
        ("v-east", "verifier", ["east"]),
        ("m-west", "manager", ["west"]),
        ("s-east-guesser", "supervisor", ["east"]),  # the guessing tests' own people (see `api`)
        ("m-east-guesser", "manager", ["east"]),
    ):
        create_user(SqlDatabase(engine), name, PW, role, sites)
        TOK[name] = "Bearer " + issue_api_token(SqlDatabase(engine), name)
    engine.dispose()
    yield g
    g.stop()
    broker.stop()


def api(gw: GatewayProc, who: str, method: str, path: str, source: str = "", **kw: Any) -> httpx.Response:
    """A call as `who`; `source`: from that loopback address. Tests that guess codes on purpose come
    from an address of their own, as people of their own: the pause they trigger (GUESS_LIMIT misses a
    minute, per caller and per address) would otherwise refuse later tests' codes for a minute."""
    headers = {"authorization": TOK[who], **kw.pop("headers", {})}
    if not source:
        return gw.api(method, path, headers=headers, **kw)
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=gw.http, transport=transport, timeout=15) as c:
        return c.request(method, path, headers=headers, **kw)


def order(gw: GatewayProc, code: str, site: str) -> None:
    body = {"orders": [{"code": code, "title": "Secret west deal", "quantity": 3, "site": site}]}
    r = api(gw, "boss", "POST", "/api/orders", json=body)
    assert r.status_code == 201, r.text


def test_products_of_another_site_are_listed_to_a_manager(gw: GatewayProc) -> None:
    """Invariant 3: every route scoped by site. A west product is west's; east's manager reads it."""
    body = {"sku": "west-only", "title": "West staff discount", "quantity": 1, "rules": {"sites": ["west"]}}
    assert api(gw, "m-west", "POST", "/api/products", json=body).status_code == 201
    seen = [p["sku"] for p in api(gw, "m-east", "GET", "/api/products").json()]
    assert "west-only" not in seen


def test_a_check_at_my_site_tells_another_sites_order_exists(gw: GatewayProc) -> None:
    """Invariant 3 (and docs: another site's order answers like an unknown code, no existence oracle):
    an east verifier's `check` of a west code says WRONG_SITE, not UNKNOWN_CODE, and leaves no miss."""
    order(gw, "HX-WEST-ORACLE-1", "west")
    known = api(
        gw, "v-east", "POST", "/api/redeem", json={"code": "HX-WEST-ORACLE-1", "site": "east", "op": "check"}
    )
    unknown = api(
        gw, "v-east", "POST", "/api/redeem", json={"code": "HX-WEST-NOPE-1", "site": "east", "op": "check"}
    )
    assert known.status_code == unknown.status_code == 200, (known.text, unknown.text)
    assert unknown.json()["reason"] == "UNKNOWN_CODE"
    assert known.json()["reason"] == unknown.json()["reason"], known.json()


def test_a_manager_takes_an_unplaced_device_through_provision(gw: GatewayProc) -> None:
    """Invariant 3: moving a device between sites needs its current site (unplaced: owners only, as
    POST /api/devices enforces). /api/fleet/devices/{id}/provision skips that check for an unplaced
    device: east's manager takes a scanner that is already in use and rotates its login."""
    peer = Peer(gw.mqtt_url, "lobby-1")
    try:
        peer.scan("s1", "HX-NOTHING-1")
        peer.wait_verdict("s1")
    finally:
        peer.close()
    listed = api(gw, "boss", "GET", "/api/devices").json()
    assert any(d["device"] == "lobby-1" and d["site"] is None for d in listed), listed
    moved = api(gw, "m-east", "POST", "/api/devices", json={"device": "lobby-1", "site": "east"})
    assert moved.status_code == 403, moved.text  # the plain route refuses
    took = api(gw, "m-east", "POST", "/api/fleet/devices/lobby-1/provision", json={"site": "east"})
    assert took.status_code == 403, took.text


def _login(gw: GatewayProc, name: str, password: str, source: str) -> int:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=gw.http, transport=transport, timeout=10) as c:
        page = c.get("/console/login")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token, page.text[:500]
        r = c.post("/console/login", data={"name": name, "password": password, "csrf": token.group(1)})
        return r.status_code


def test_owner_password_guessing_is_unbounded_from_rotating_addresses(gw: GatewayProc) -> None:
    """Invariant 6: sign-in back-off. It is per name@address and per address only, so a stranger
    on the shop LAN who takes a new address every 5 tries (DHCP, static IPs, IPv6 privacy addresses)
    guesses the owner's password without ever being slowed down: 60 tries from 12 addresses, no 429."""
    seen = [_login(gw, "boss", f"guess-{i}", f"127.0.0.{10 + i // 5}") for i in range(60)]
    assert seen[:5] == [401] * 5, seen  # wrong passwords are answered as such until a bound is reached
    # What a bound per name (across addresses) would do: refuse or slow the 60th try.
    assert 429 in seen, "no limit on guesses at one name across addresses"


def test_order_codes_lie_in_readable_qr_files(gw: GatewayProc) -> None:
    """Invariant 5 (order codes are bearer credentials; secrets 0600): each QR fetched is written to
    VAR_DIR/qr/<code>.png|svg with the umask's mode, so the file names list live codes to anyone who
    can list the folder, and the files are world-readable."""
    order(gw, "HX-QR-SECRET-1", "east")
    assert api(gw, "m-east", "GET", "/api/orders/HX-QR-SECRET-1/qr.png").status_code == 200
    qr = gw.var_dir / "qr"
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in qr.iterdir()}
    dirs = [stat.S_IMODE(d.stat().st_mode) for d in (gw.var_dir, qr)]
    readable = {n: oct(m) for n, m in modes.items() if m & 0o077}
    open_dirs = [oct(m) for m in dirs if m & 0o005]
    assert not (readable and open_dirs == [oct(m) for m in dirs]), (readable, open_dirs, os.getuid())


def test_guessing_alarms_of_one_site_are_shown_to_another_sites_manager(gw: GatewayProc) -> None:
    """Invariant 3: the fleet's alarms are scoped by site. A guessing alarm is filed under the device
    `web-<caller>`, which has no site, so every manager of every site sees east's people's alarms."""
    for i in range(25):
        body = {"code": f"HX-GUESS-{i}", "site": "east", "op": "check"}
        r = api(gw, "v-east", "POST", "/api/redeem", source="127.0.0.50", json=body)
        if r.status_code == 429:
            break
    mine = [a["device"] for a in api(gw, "boss", "GET", "/api/fleet/alarms").json()]
    assert "web-v-east" in mine, mine  # the alarm is there
    west = [a["device"] for a in api(gw, "m-west", "GET", "/api/fleet/alarms").json()]
    assert "web-v-east" not in west, west


def test_first_owner_password_reaches_a_log_with_force_color(tmp_path: Path, gateway_factory: Any) -> None:
    """Invariant 5: the banner shows the owner password only on a TTY. FORCE_COLOR=1 (Docker images,
    CI, many systemd units to keep colours) makes rich call the pipe a terminal: the password is in the log."""
    broker = Mosquitto(workdir=tmp_path / "broker")
    broker.start()
    try:
        g = gateway_factory(broker.url, tmp_path / "fc.db", {"FORCE_COLOR": "1"})
        password = (g.var_dir / "owner-password.txt").read_text().strip().split()[-1]
        g.stop()
        assert password and password not in g.log_path.read_text(errors="replace")
    finally:
        broker.stop()


def test_fleet_commands_over_rest_are_audited_as_api_not_the_caller(gw: GatewayProc) -> None:
    """Invariant 5: the audit names the authenticated principal. A reboot sent over REST by east's
    manager is logged with source `api` (the console logs `console:<name>`): who rebooted the gate?"""
    r = api(gw, "boss", "POST", "/api/devices", json={"device": "gate-east-9", "site": "east"})
    assert r.status_code == 201, r.text
    sent = api(gw, "m-east", "POST", "/api/fleet/devices/gate-east-9/commands", json={"cmd": "reboot"})
    assert sent.status_code == 200, sent.text
    history = api(gw, "boss", "GET", "/api/fleet/devices/gate-east-9").json()["commands"]
    assert history[0]["cmd"] == "reboot"
    assert "m-east" in str(history[0]["source"]), history[0]


def test_the_console_tells_another_sites_order_from_an_unknown_code(gw: GatewayProc) -> None:
    """Invariant 3 (docs: another site's order answers like an unknown code): the REST API answers
    404 for both, the console's order page answers 403 for west's order and 404 for a made-up code."""
    order(gw, "HX-WEST-PAGE-1", "west")
    west = api(gw, "m-east", "GET", "/console/orders/HX-WEST-PAGE-1")
    unknown = api(gw, "m-east", "GET", "/console/orders/HX-WEST-NOPE-9")
    assert unknown.status_code == 404
    assert west.status_code == unknown.status_code, (west.status_code, unknown.status_code)


def test_the_live_feed_shows_another_sites_typed_codes(gw: GatewayProc) -> None:
    """Invariant 3: the live feed is scoped by site. Typed redemptions and checks are enriched by the
    ledger key `idem_key(device, sid)`, which is not the key typed redemptions are stored under, so
    they arrive with site null, which every manager sees: east's manager reads west's order codes
    (bearer credentials) as west's staff type them."""
    order(gw, "HX-W-LIVE-1", "west")
    got = _watch_live(gw, "m-east")
    body = {"code": "HX-W-LIVE-1", "site": "west", "request_id": "live-w-1"}
    assert api(gw, "m-west", "POST", "/api/redeem", json=body).json()["ok"] is True
    time.sleep(2.0)
    leaked = [(e["code"], e["site"]) for e in got if e.get("code") == "HX-W-LIVE-1"]
    assert leaked == [], leaked


def _watch_live(gw: GatewayProc, who: str) -> list[dict[str, Any]]:
    """The live feed's events as `who` receives them, collected by a thread (subscribed on return)."""
    got: list[dict[str, Any]] = []

    def listen() -> None:
        headers = {"authorization": TOK[who]}
        with httpx.stream("GET", gw.http + "/console/live/events", headers=headers, timeout=20) as r:
            for line in r.iter_lines():
                if line.startswith("data:"):
                    got.append(json.loads(line[5:]))

    threading.Thread(target=listen, daemon=True).start()
    time.sleep(1.0)  # subscribed
    return got


def _misses(gw: GatewayProc, actor: str) -> int:
    with sqlite3.connect(gw.db_path) as c:
        row = c.execute("SELECT count(*) FROM audit WHERE action = 'code_miss' AND actor = ?", (actor,))
        return int(row.fetchone()[0])


@pytest.mark.parametrize(
    "who,path",
    [
        ("s-east-guesser", "/console/orders/{code}"),
        ("s-east-guesser", "/console/orders/{code}/qr.png"),
        ("m-east-guesser", "/api/orders/{code}/ticket"),
        ("m-east-guesser", "/api/orders/{code}/qr.svg"),
    ],
)
def test_code_lookups_that_are_neither_audited_nor_limited(gw: GatewayProc, who: str, path: str) -> None:
    """Invariant 6 (docs: every unknown code is a miss, "whether from a redemption, a check or a look-up
    by code", and GUESS_LIMIT=20 misses a minute pause the caller): these look-ups by code answer 404
    for an unknown code and 200 for a real one, 40 times in a row, with no audit row and no pause."""
    before = _misses(gw, who)
    tag = path.split("/")[1] + str(abs(hash(path)) % 1000)
    source = f"127.0.0.{60 + zlib.crc32(path.encode()) % 100}"  # one address per route (all differ)
    answers = [
        api(gw, who, "GET", path.format(code=f"HX-GUESS-{tag}-{i}"), source=source).status_code
        for i in range(40)
    ]
    assert 429 in answers or _misses(gw, who) > before, (answers.count(404), _misses(gw, who) - before)


def test_metrics_show_another_sites_devices_to_a_manager(gw: GatewayProc) -> None:
    """Invariant 3: /metrics is a manager's route, not scoped: east's manager reads west's device ids
    (with their outboxes) and how many of west's scanners are online."""
    assert (
        api(gw, "boss", "POST", "/api/devices", json={"device": "west-gate-7", "site": "west"}).status_code
        == 201
    )
    peer = Peer(gw.mqtt_url, "west-gate-7")
    try:
        peer.publish("status", json.dumps({"v": 1, "state": "online", "outbox": 3}), retain=True)

        def shown() -> bool:
            return "west-gate-7" in api(gw, "boss", "GET", "/metrics").text

        wait_for(shown, 10, "the device in the owner's metrics")
        text = api(gw, "m-east", "GET", "/metrics").text
    finally:
        peer.publish("status", "", retain=True)
        peer.close()
    assert "west-gate-7" not in text and 'site="west"' not in text, [
        line for line in text.splitlines() if "west" in line
    ]


@pytest.mark.parametrize("how", ["rules", "product", "import"])
def test_an_east_manager_makes_orders_that_open_wests_gates(gw: GatewayProc, how: str) -> None:
    """Invariant 3 (docs: nobody creates or imports orders for another site): POST /api/orders checks
    only the order's `site`, but a redemption obeys `rules.sites` first (domain/decisions.py). East's
    manager sells an order "for east" whose rules (given, or copied from a west-only product) make it
    valid at west and not at east: free entries at the other site."""
    code = f"HX-EAST-FOR-WEST-{how}"
    line: dict[str, Any] = {"code": code, "title": "T", "quantity": 2, "site": "east"}
    if how == "rules":
        line["rules"] = {"sites": ["west"]}
    if how != "rules":
        body = {"sku": "west-vip", "title": "West VIP", "quantity": 2, "rules": {"sites": ["west"]}}
        assert api(gw, "boss", "POST", "/api/products", json=body).status_code in (201, 409)
        line["product"] = "west-vip"
    if how == "import":
        csv = f"code,title,quantity,site,product\n{code},T,2,east,west-vip\n".encode()
        made = api(
            gw, "m-east", "POST", "/api/orders/import", content=csv, headers={"content-type": "text/csv"}
        )
        refused = made.status_code in (403, 422) or made.json().get("created") == 0
    else:
        made = api(gw, "m-east", "POST", "/api/orders", json={"orders": [line]})
        refused = made.status_code in (403, 422)
    if refused:
        return  # refused: the right answer
    assert made.status_code in (200, 201), made.text
    at_west = api(gw, "m-west", "POST", "/api/redeem", json={"code": code, "site": "west", "request_id": how})
    assert at_west.json()["reason"] != "OK", at_west.json()


def test_a_manager_reboots_an_unplaced_device_from_the_console(gw: GatewayProc) -> None:
    """Invariant 3: fleet commands need the device's site (REST: an unplaced device is owners' only,
    403). The console's device page and its buttons let any site's manager reboot it."""
    peer = Peer(gw.mqtt_url, "lobby-2")
    try:
        peer.scan("s1", "HX-NOTHING-2")
        peer.wait_verdict("s1")
    finally:
        peer.close()
    rest = api(gw, "m-east", "POST", "/api/fleet/devices/lobby-2/commands", json={"cmd": "reboot"})
    assert rest.status_code == 403, rest.text
    page = api(gw, "m-east", "GET", "/console/devices/lobby-2")
    button = api(gw, "m-east", "POST", "/console/devices/lobby-2/cmd", data={"cmd": "reboot"})
    assert (page.status_code, button.status_code) == (403, 403), (page.status_code, button.status_code)


def test_the_live_feed_shows_a_typed_check_of_another_sites_order_as_unknown(gw: GatewayProc) -> None:
    """The live feed follows the typed answer: an east person's check of a west code reads
    UNKNOWN_CODE to east's manager, like the answer the person got, not WRONG_SITE."""
    order(gw, "HX-W-LIVE-2", "west")
    got = _watch_live(gw, "m-east")
    body = {"code": "HX-W-LIVE-2", "site": "east", "op": "check"}
    answer = api(gw, "s-east", "POST", "/api/redeem", source="127.0.0.90", json=body).json()
    assert answer["reason"] == "UNKNOWN_CODE", answer
    wait_for(lambda: any(e.get("code") == "HX-W-LIVE-2" for e in got), 10, "the check in the feed")
    seen = [
        (e["reason"], e["l1"], e["title"], "order_site" in e) for e in got if e.get("code") == "HX-W-LIVE-2"
    ]
    assert seen == [("UNKNOWN_CODE", answer["l1"], None, False)], seen
