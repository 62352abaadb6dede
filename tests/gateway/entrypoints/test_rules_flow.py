# Issue-4 rules end to end over MQTT (devices) and REST (console) against a real gateway and Mosquitto.
from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.adapters.brokers.mosquitto import Mosquitto
from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.services.accounts import create_user
from tests.conftest import GatewayProc
from tests.gateway.mqtt_peer import Peer


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayProc, Mosquitto]]:
    tmp: Path = tmp_path_factory.mktemp("rules")
    broker = Mosquitto(workdir=tmp / "broker")
    broker.start()
    g = GatewayProc(
        broker.url, tmp / "rules.db", tmp / "var", env={"SIGNING_KEY": "k3y", "AUTO_REGISTER_SITE": "zoo"}
    ).start()
    for slug in ("zoo", "park"):
        assert g.api("POST", "/api/sites", json={"slug": slug, "name": slug.title()}).status_code == 201
    engine = make_engine(f"sqlite:///{g.db_path}")
    for name in ("ana", "bo"):  # the verifiers who get PINs at the zoo
        create_user(SqlDatabase(engine), name, "a-long-password", "verifier", ["zoo"])
    engine.dispose()
    yield g, broker
    g.stop()
    broker.stop()


def order(g: GatewayProc, **fields: Any) -> dict[str, Any]:
    r = g.api("POST", "/api/orders", json={"orders": [fields]})
    assert r.status_code == 201, r.text
    return dict(g.api("GET", f"/api/orders/{r.json()['codes'][0]}").json())


def scan(dev: Peer, sid: str, **fields: Any) -> dict[str, Any]:
    dev.publish("scan", json.dumps({"v": 1, "sid": sid, "at": 0, **fields}))
    return dev.wait_verdict(sid)


def test_partial_quantity_and_check_over_mqtt(stack: tuple[GatewayProc, Mosquitto]) -> None:
    g, b = stack
    o = order(g, title="VIP", quantity=10, site="zoo")
    dev = Peer(b.url, "hand-1")
    try:
        chk = scan(dev, "c1", op="check", code=o["code"])
        assert (chk["ok"], chk["check"], chk["max"], chk["left"], chk["l2"]) == (
            True,
            True,
            10,
            10,
            "10 left",
        )
        v = scan(dev, "c2", code=o["code"], qty=9)
        assert (v["ok"], v["left"], v["l2"]) == (True, 1, "1 of 10 left")
        over = scan(dev, "c3", code=o["code"], qty=2)
        assert (over["reason"], over["left"]) == ("QTY_EXCEEDED", 1)
    finally:
        dev.close()
    assert g.api("GET", f"/api/orders/{o['code']}").json()["used"] == 9
    assert (
        g.api("GET", "/api/redemptions", params={"code": o["code"]}).json()["total"] == 2
    )  # checks aren't recorded


def test_pack_with_daily_limit_and_voucher_balance(stack: tuple[GatewayProc, Mosquitto]) -> None:
    g, b = stack
    pack = order(g, title="Car Wash", kind="pack", quantity=5, rules={"per_day": 1})
    voucher = order(g, title="Cash 100", kind="value", quantity=10000)
    dev = Peer(b.url, "hand-2")
    try:
        assert scan(dev, "p1", code=pack["code"])["ok"]
        lim = scan(dev, "p2", code=pack["code"])
        assert (lim["reason"], lim["l1"], lim["left"]) == ("DAILY_LIMIT", "DAILY LIMIT", 4)
        need = scan(dev, "v0", code=voucher["code"])
        assert (need["reason"], need["bal"]) == ("AMOUNT_NEEDED", 10000)
        pay = scan(dev, "v1", code=voucher["code"], amt=2550)
        assert (pay["ok"], pay["bal"], pay["l2"]) == (True, 7450, "bal 74.50")
        low = scan(dev, "v2", code=voucher["code"], amt=7451)
        assert (low["reason"], low["bal"]) == ("LOW_BALANCE", 7450)
    finally:
        dev.close()
    assert g.api("GET", f"/api/orders/{voucher['code']}").json()["used"] == 2550


def test_entry_exit_passback_and_inside_count(stack: tuple[GatewayProc, Mosquitto]) -> None:
    """Hole 5: units inside are counted, so a group on one ticket passes one by one."""
    g, b = stack
    t = order(g, title="Day", quantity=2, site="zoo", rules={"passback": True})
    gate_in, gate_out = Peer(b.url, "turn-in"), Peer(b.url, "turn-out")
    try:
        before = g.api("GET", "/api/inside").json()["sites"]["zoo"]
        assert scan(gate_in, "i1", code=t["code"])["ok"]
        assert g.api("GET", "/api/inside").json()["sites"]["zoo"] == before + 1
        assert scan(gate_in, "i2", code=t["code"])["ok"]  # the second of the group
        assert g.api("GET", "/api/inside").json()["sites"]["zoo"] == before + 2
        pb = scan(gate_in, "i3", code=t["code"])
        assert (pb["reason"], pb["l1"]) == ("PASSBACK", "ALREADY INSIDE")
        out = scan(gate_out, "o1", code=t["code"], dir="out")
        assert (out["ok"], out["l1"], out["left"]) == (True, "GOODBYE", 0)
        assert g.api("GET", "/api/inside").json()["sites"]["zoo"] == before + 1
    finally:
        gate_in.close()
        gate_out.close()
    assert g.api("GET", f"/api/orders/{t['code']}").json()["used"] == 2  # leaving never costs a unit


def test_annul_by_the_same_device_only(stack: tuple[GatewayProc, Mosquitto]) -> None:
    g, b = stack
    t = order(g, title="Gate", quantity=1)
    turn, other = Peer(b.url, "turn-a"), Peer(b.url, "turn-b")
    try:
        assert scan(turn, "s1", code=t["code"])["ok"]
        refused = scan(other, "x1", op="annul", ref="s1")  # another device can't undo it
        assert (refused["ok"], refused["reason"]) == (False, "ANNUL_REFUSED")
        ann = scan(turn, "s2", op="annul", ref="s1")
        assert (ann["ok"], ann["l1"], ann["left"]) == (True, "ANNULLED", 1)
        again = scan(turn, "s3", op="annul", ref="s1")
        assert (again["reason"], again["detail"]) == ("ANNUL_REFUSED", "already undone")
        assert scan(turn, "s4", code=t["code"])["ok"]  # the unit is back
    finally:
        turn.close()
        other.close()
    rows = g.api("GET", "/api/redemptions", params={"code": t["code"]}).json()["items"]
    assert g.api("GET", f"/api/orders/{t['code']}").json()["used"] == 1
    got = sorted((r["scan_id"], r["op"], r["reason"], r["undone"]) for r in rows)
    assert got == [
        ("s1", "redeem", "OK", True),  # annulled: undone, its unit came back
        ("s2", "annul", "OK", False),
        ("s3", "annul", "ANNUL_REFUSED", False),
        ("s4", "redeem", "OK", False),
    ]


def test_refund_only_unredeemed_then_revert(stack: tuple[GatewayProc, Mosquitto]) -> None:
    g, _ = stack
    t = order(g, title="Tour x4", quantity=4, site="park")
    code = t["code"]
    v = g.api(
        "POST",
        "/api/redeem",
        json={"request_id": secrets.token_hex(8), "code": code, "qty": 3, "site": "park"},
    ).json()
    assert v["ok"]
    too_much = g.api("POST", f"/api/orders/{code}/refund", json={"units": 2, "reason": "rain"})
    assert too_much.status_code == 409 and "revert used units first" in too_much.json()["error"]["message"]
    ok = g.api("POST", f"/api/orders/{code}/refund", json={"units": 1, "reason": "rain"}).json()
    assert (ok["refunded"], ok["left"]) == (1, 0)
    denied = g.api(
        "POST", "/api/redeem", json={"request_id": secrets.token_hex(8), "code": code, "site": "park"}
    ).json()
    assert denied["reason"] == "ALREADY_USED"
    red = g.api("GET", "/api/redemptions", params={"code": code, "ok": "true"}).json()["items"][0]
    no_reason = g.api("POST", f"/api/redemptions/{red['id']}/revert", json={"reason": ""})
    assert no_reason.status_code == 422
    rv = g.api(
        "POST", f"/api/redemptions/{red['id']}/revert", json={"reason": "wrong ticket", "by": "sup"}
    ).json()
    assert rv["units"] == 3
    assert g.api("POST", f"/api/redemptions/{red['id']}/revert", json={"reason": "x"}).status_code == 409
    after = g.api("GET", f"/api/orders/{code}").json()
    assert (after["used"], after["refunded"], after["left"]) == (0, 1, 3)
    full = g.api("POST", f"/api/orders/{code}/refund", json={"all": True, "reason": "all"}).json()
    assert (full["status"], full["refunded"]) == ("refunded", 4)
    assert (
        g.api(
            "POST", "/api/redeem", json={"request_id": secrets.token_hex(8), "code": code, "site": "park"}
        ).json()["reason"]
        == "REFUNDED"
    )


def test_cancel_only_unused(stack: tuple[GatewayProc, Mosquitto]) -> None:
    g, _ = stack
    a = order(g, title="A", quantity=2)
    assert (
        g.api("POST", f"/api/orders/{a['code']}/cancel", json={"reason": "shop"}).json()["status"]
        == "cancelled"
    )
    assert (
        g.api(
            "POST", "/api/redeem", json={"request_id": secrets.token_hex(8), "code": a["code"], "site": "zoo"}
        ).json()["reason"]
        == "CANCELLED"
    )
    b = order(g, title="B", quantity=2)
    g.api("POST", "/api/redeem", json={"request_id": secrets.token_hex(8), "code": b["code"], "site": "zoo"})
    r = g.api("POST", f"/api/orders/{b['code']}/cancel", json={"reason": "shop"})
    assert r.status_code == 409


def test_products_are_snapshots(stack: tuple[GatewayProc, Mosquitto]) -> None:
    g, _ = stack
    p = {
        "sku": "SPA5",
        "title": "Spa x5",
        "kind": "pack",
        "quantity": 5,
        "rules": {"sites": ["park"], "hours": "00:00-23:59"},
    }
    assert g.api("POST", "/api/products", json=p).status_code == 201
    o = order(g, product="SPA5")
    assert (o["title"], o["kind"], o["quantity"], o["rules"]["sites"]) == ("Spa x5", "pack", 5, [2])
    g.api(
        "PUT", "/api/products/SPA5", json={**p, "title": "Spa x3", "quantity": 3, "rules": {"sites": ["zoo"]}}
    )
    assert g.api("DELETE", "/api/products/SPA5").status_code == 204
    same = g.api("GET", f"/api/orders/{o['code']}").json()
    assert (same["title"], same["quantity"], same["rules"]["sites"]) == ("Spa x5", 5, [2])
    assert (
        g.api(
            "POST", "/api/redeem", json={"request_id": secrets.token_hex(8), "code": o["code"], "site": "zoo"}
        ).json()["reason"]
        == "WRONG_SITE"
    )
    r = g.api("POST", "/api/orders", json={"orders": [{"product": "SPA5"}]})
    assert r.status_code == 422 and "unknown product" in r.json()["error"]["message"]


def test_short_codes_and_signed_codes(stack: tuple[GatewayProc, Mosquitto]) -> None:
    g, b = stack
    o = order(g, title="Sunny", quantity=2)
    assert o["code"].startswith("HX-") and len(o["code"]) == 32  # HX- + 20 random + - + 8 signature
    short = o["short_code"]
    assert len(short) == 11 and short[5] == "-"
    v = g.api(
        "POST", "/api/redeem", json={"request_id": secrets.token_hex(8), "code": short.lower(), "site": "zoo"}
    ).json()
    assert (v["ok"], v["left"]) == (True, 1)
    forged = o["code"][:-1] + ("A" if o["code"][-1] != "A" else "B")
    dev = Peer(b.url, "hand-9")
    try:
        f = scan(dev, "f1", code=forged)
        assert (f["ok"], f["reason"], f["sound"]) == (False, "FORGED", "deny")
        foreign = scan(dev, "f2", code="YOUZAN-778899")  # third-party codes are looked up as they are
        assert foreign["reason"] == "UNKNOWN_CODE"
    finally:
        dev.close()
    assert g.api("GET", "/api/redemptions", params={"code": forged}).json()["total"] == 0
    assert g.api("GET", "/api/health").json()["mqtt"]["scans"] >= 2


def test_verifier_signs_in_on_a_handheld_with_a_pin(stack: tuple[GatewayProc, Mosquitto]) -> None:
    g, b = stack
    assert g.api("PUT", "/api/users/ana/pin", json={"site": "zoo", "pin": "4321"}).status_code == 204
    assert g.api("PUT", "/api/users/bo/pin", json={"site": "zoo", "pin": "4321"}).status_code == 409
    assert g.api("PUT", "/api/users/bo/pin", json={"site": "zoo", "pin": "12"}).status_code == 422
    t = order(g, title="Staff stats", quantity=3)
    dev = Peer(b.url, "hand-pin")  # auto-registered at site zoo
    try:
        bad = scan(dev, "l0", op="login", pin="0000")
        assert (bad["ok"], bad["reason"], bad["l1"]) == (False, "BAD_PIN", "WRONG PIN")
        hello = scan(dev, "l1", op="login", pin="4321")
        assert (hello["ok"], hello["l1"]) == (True, "HELLO ANA")
        assert scan(dev, "r1", code=t["code"])["ok"]
        assert scan(dev, "l2", op="logout")["l1"] == "SIGNED OUT"
        assert scan(dev, "r2", code=t["code"])["ok"]
    finally:
        dev.close()
    rows = g.api("GET", "/api/redemptions", params={"code": t["code"]}).json()["items"]
    assert {r["scan_id"]: r.get("user") for r in rows} == {"r1": "ana", "r2": None}


def test_printable_ticket(stack: tuple[GatewayProc, Mosquitto]) -> None:
    g, _ = stack
    o = order(g, title="Night Club <VIP>", quantity=2, rules={"days": "0000011", "hours": "22:00-04:00"})
    page = g.api("GET", f"/api/orders/{o['code']}/ticket")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert "<svg" in text and o["short_code"] in text and o["code"] in text
    assert "Night Club &lt;VIP&gt;" in text and "<VIP>" not in text  # escaped
    assert "Sat,Sun" in text and "22:00-04:00" in text
    assert g.api("GET", "/api/orders/NOPE/ticket").status_code == 404
