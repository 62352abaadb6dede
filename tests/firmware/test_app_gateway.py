# The handheld picker end to end: real firmware (unix board) + real Mosquitto + the real gateway.
# Scan -> check -> pick 3 with the buttons -> redeem 3 -> the gateway's ledger shows 3 used; then a
# voucher amount and a verifier PIN sign-in that is attributed in the ledger.
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.adapters.brokers.mosquitto import Mosquitto
from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.services.accounts import create_user
from tests.conftest import GatewayProc
from tests.firmware.test_app_host import Device
from tests.helpers import wait_for

DEV = "fw-gw-hand"


def _order(g: GatewayProc, **fields: Any) -> dict[str, Any]:
    r = g.api("POST", "/api/orders", json={"orders": [{"site": None, **fields}]})
    assert r.status_code == 201, r.text
    return dict(g.api("GET", f"/api/orders/{r.json()['codes'][0]}").json())


def _screen(dev: Device, state: str, after: int, **want: str) -> dict[str, Any]:
    return dev.wait(
        lambda e: e["ev"] == "screen" and e["state"] == state and all(e.get(k) == v for k, v in want.items()),
        after,
        f"{state} {want}",
    )


def test_pick_three_redeems_three(
    tmp_path: Path, mosquitto: Mosquitto, gateway_factory: Callable[..., GatewayProc]
) -> None:
    g = gateway_factory(mosquitto.url, env={"AUTO_REGISTER_SITE": "s1"})
    assert g.api("POST", "/api/sites", json={"slug": "s1", "name": "Site One"}).status_code == 201
    engine = make_engine(f"sqlite:///{g.db_path}")
    create_user(
        SqlDatabase(engine), "ana", "a-long-password", "verifier", ["s1"]
    )  # PINs are for people of the site
    engine.dispose()
    assert g.api("PUT", "/api/users/ana/pin", json={"site": "s1", "pin": "2468"}).status_code == 204
    vip = _order(g, title="VIP x10", quantity=10)
    cash = _order(g, title="Cash 100", kind="value", quantity=10000)
    dev = Device(tmp_path, mosquitto, mode="handheld", device=DEV, pick=True)
    dev.start()
    try:
        dev.wait(lambda e: e["ev"] == "screen" and e["state"] == "READY", what="READY")
        # Sign in first so the redemptions are attributed to the verifier.
        m = dev.mark()
        dev.press("ok_long")
        for digit in (2, 4, 6, 8):
            dev.press(*(["up"] * (digit + 1)), "ok")
        dev.press("ok")
        _screen(dev, "OK", m, l1="HELLO ANA")
        dev.press("ok")
        m = dev.mark()
        dev.type(vip["code"].encode() + b"\r\n")
        _screen(dev, "PICK", m, l1="VIP x10", l2="10 left  x1")
        dev.press("up", "up")
        _screen(dev, "PICK", m, l2="10 left  x3")
        dev.press("ok")
        _screen(dev, "OK", m, l2="7 of 10 left")
        got = g.api("GET", f"/api/orders/{vip['code']}").json()
        assert (got["used"], got["quantity"]) == (3, 10)
        rows = g.api("GET", "/api/redemptions", params={"code": vip["code"]}).json()["items"]
        assert [(r["qty"], r["user"]) for r in rows] == [(3, "ana")], rows
        # A voucher: pay 21.00 (two long presses up = 20.00 more, from 1.00).
        m = dev.mark()
        dev.type(cash["code"].encode() + b"\r\n")
        _screen(dev, "PICK", m, l2="pay 1.00")
        dev.press("up_long", "up_long")
        _screen(dev, "PICK", m, l2="pay 21.00")
        dev.press("ok")
        v = dev.wait(lambda e: e["ev"] == "verdict" and e["shown"] and e["ok"], m, "voucher verdict")
        assert v["reason"] == "OK"
        wait_for(
            lambda: g.api("GET", f"/api/orders/{cash['code']}").json()["used"] == 2100, 15, "2100 cents spent"
        )
        log = (dev.out / "events.log").read_text()
        assert "2468" not in log
    finally:
        dev.kill()


def test_gateway_down_shows_offline_and_queued_scans_drain(
    tmp_path: Path, mosquitto: Mosquitto, gateway_factory: Callable[..., GatewayProc]
) -> None:
    """Broker up, gateway down: the device says OFFLINE (from the gateway's retained last will) and
    queues; when the gateway is back the queue is answered and the device is READY again."""
    g = gateway_factory(mosquitto.url)
    t = _order(g, title="Pool", quantity=5)
    dev = Device(tmp_path, mosquitto, mode="turnstile", device="fw-gw-down")
    dev.start()
    try:
        dev.wait(lambda e: e["ev"] == "screen" and e["state"] == "READY", what="READY")
        m = dev.mark()
        g.stop(hard=True)
        dev.wait(lambda e: e["ev"] == "gateway" and e["up"] is False, m, "gateway down seen")
        _screen(dev, "OFFLINE", m)
        m = dev.mark()
        dev.type(t["code"].encode() + b"\r\n")
        dev.wait(lambda e: e["ev"] == "scan", m, "scan queued")
        _screen(dev, "OFFLINE", m, l2="queued: 1")
        g.start()
        v = dev.wait(lambda e: e["ev"] == "verdict" and e["ok"], m, "queued scan answered", timeout=30)
        assert v["reason"] == "OK"
        _screen(dev, "READY", m)
        assert g.api("GET", f"/api/orders/{t['code']}").json()["used"] == 1
    finally:
        dev.kill()
