# Scans through a real Mosquitto to a real gateway process: verdicts, idempotency, restarts, bad input, races.
from __future__ import annotations

import json
import threading
import time
from typing import Any

from gateway.adapters.brokers.mosquitto import Mosquitto
from tests.conftest import GatewayProc
from tests.gateway.mqtt_peer import Peer
from tests.helpers import wait_for


def make_order(g: GatewayProc, code: str, quantity: int = 1, **kw: Any) -> None:
    r = g.api(
        "POST", "/api/orders", json={"orders": [{"code": code, "title": "Pass", "quantity": quantity, **kw}]}
    )
    assert r.status_code == 201, r.text


def ledger(g: GatewayProc, **params: Any) -> list[dict[str, Any]]:
    r = g.api("GET", "/api/redemptions", params={"limit": 10000, **params})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


def test_scan_gets_ok_then_already_used(gateway: GatewayProc, mosquitto: Mosquitto) -> None:
    make_order(gateway, "T-ONE", quantity=2)
    dev = Peer(mosquitto.url, "gate-1")
    try:
        dev.scan("1-1", "T-ONE")
        v = dev.wait_verdict("1-1")
        assert (v["ok"], v["reason"], v["left"], v["sound"]) == (True, "OK", 1, "ok")
        assert v["l2"] == "1 of 2 left"
        dev.scan("1-2", "T-ONE")
        assert dev.wait_verdict("1-2")["left"] == 0
        dev.scan("1-3", "T-ONE")
        v3 = dev.wait_verdict("1-3")
        assert (v3["ok"], v3["reason"], v3["sound"]) == (False, "ALREADY_USED", "deny")
        assert "gate-1" in v3["detail"] and len(v3["l1"]) <= 16 and len(v3["l2"]) <= 16
        dev.scan("1-4", "NO-SUCH-CODE")
        assert dev.wait_verdict("1-4")["reason"] == "UNKNOWN_CODE"
    finally:
        dev.close()
    order = gateway.api("GET", "/api/orders/T-ONE").json()
    assert order["used"] == 2
    reasons = sorted(r["reason"] for r in ledger(gateway))
    assert reasons == ["ALREADY_USED", "OK", "OK", "UNKNOWN_CODE"]


def test_retried_scan_id_is_answered_again_without_second_redemption(
    gateway: GatewayProc, mosquitto: Mosquitto
) -> None:
    make_order(gateway, "T-RETRY", quantity=5)
    dev = Peer(mosquitto.url, "gate-2")
    try:
        for _ in range(4):
            dev.scan("7-1", "T-RETRY")
        wait_for(lambda: len(dev.verdicts_for("7-1")) == 4, 15, "four answers")
        answers = dev.verdicts_for("7-1")
        assert all(a == answers[0] for a in answers), answers
        assert answers[0]["ok"] and answers[0]["left"] == 4
    finally:
        dev.close()
    assert gateway.api("GET", "/api/orders/T-RETRY").json()["used"] == 1
    assert len(ledger(gateway, device="gate-2")) == 1


def test_idempotent_across_gateway_crash_and_restart(gateway: GatewayProc, mosquitto: Mosquitto) -> None:
    make_order(gateway, "T-CRASH", quantity=3)
    dev = Peer(mosquitto.url, "gate-3")
    try:
        dev.scan("a-1", "T-CRASH")
        first = dev.wait_verdict("a-1")
        gateway.restart(hard=True)  # SIGKILL: nothing gets a chance to flush
        dev.scan("a-1", "T-CRASH")
        wait_for(lambda: len(dev.verdicts_for("a-1")) >= 2, 20, "answer after restart")
        assert dev.verdicts_for("a-1")[1] == first
    finally:
        dev.close()
    assert gateway.api("GET", "/api/orders/T-CRASH").json()["used"] == 1


def test_scans_sent_while_gateway_is_down_are_answered_when_it_is_back(
    gateway: GatewayProc, mosquitto: Mosquitto
) -> None:
    make_order(gateway, "T-DOWN", quantity=10)
    dev = Peer(mosquitto.url, "gate-4")
    try:
        dev.scan("w-0", "T-DOWN")
        dev.wait_verdict("w-0")  # the gateway's persistent session exists from here on
        gateway.stop()
        for i in range(1, 4):
            dev.scan(f"w-{i}", "T-DOWN")
        gateway.start()
        for i in range(1, 4):
            assert dev.wait_verdict(f"w-{i}", 20)["ok"]
    finally:
        dev.close()
    assert gateway.api("GET", "/api/orders/T-DOWN").json()["used"] == 4


def test_malformed_scans_get_a_clear_verdict_and_change_nothing(
    gateway: GatewayProc, mosquitto: Mosquitto, contract: Any
) -> None:
    make_order(gateway, "X", quantity=5)
    dev = Peer(mosquitto.url, "gate-5")
    cases = contract("invalid_scans.json")
    try:
        for case in cases:
            dev.publish("scan", case["payload"].encode())
        dev.publish("scan", b"\xff\xfe garbage")
        big = json.dumps(
            {"v": 1, "sid": "big-1", "code": "X", "qty": 1, "dir": "in", "at": 0, "pad": "x" * 2000}
        )
        dev.publish("scan", big.encode())
        dev.scan("ok-1", "X")  # a good scan after all the bad ones still works
        assert dev.wait_verdict("ok-1")["ok"]
        for case in cases:
            if case["sid"] is not None:
                v = dev.wait_verdict(case["sid"])
                assert (v["ok"], v["reason"], v["sound"]) == (False, "MALFORMED", "error"), case["why"]
                assert v["detail"], case["why"]
        assert dev.wait_verdict("big-1")["reason"] == "MALFORMED"
        answered = {v["sid"] for v in dev.verdicts}
        assert answered == {c["sid"] for c in cases if c["sid"]} | {"big-1", "ok-1"}
    finally:
        dev.close()
    health = gateway.api("GET", "/api/health").json()
    assert health["mqtt"]["dropped"] >= 4  # not json, array, no sid, binary garbage
    assert gateway.api("GET", "/api/orders/X").json()["used"] == 1
    assert [r["reason"] for r in ledger(gateway)] == ["OK"]


def test_sixteen_devices_race_for_one_ticket(gateway: GatewayProc, mosquitto: Mosquitto) -> None:
    make_order(gateway, "T-RACE", quantity=1)
    devs = [Peer(mosquitto.url, f"race-{i}") for i in range(16)]
    try:
        barrier = threading.Barrier(16)

        def go(d: Peer) -> None:
            barrier.wait()
            d.scan("r-1", "T-RACE")

        threads = [threading.Thread(target=go, args=(d,)) for d in devs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        verdicts = [d.wait_verdict("r-1") for d in devs]
    finally:
        for d in devs:
            d.close()
    assert sum(v["ok"] for v in verdicts) == 1
    assert sorted(v["reason"] for v in verdicts) == ["ALREADY_USED"] * 15 + ["OK"]
    assert gateway.api("GET", "/api/orders/T-RACE").json()["used"] == 1


def test_status_and_last_will_drive_online_state(
    gateway: GatewayProc, mosquitto: Mosquitto, contract: Any
) -> None:
    dev = Peer(mosquitto.url, "gate-6", will=True)
    online = contract("examples/status_online.json")
    dev.publish("status", json.dumps(online), retain=True)

    def device() -> dict[str, Any] | None:
        found = [d for d in gateway.api("GET", "/api/devices").json() if d["device"] == "gate-6"]
        return found[0] if found else None

    d = wait_for(lambda: (x := device()) and x["online"] and x, 15, "device online")
    assert d["status"]["fw"] == online["fw"]
    dev.close(clean=False)
    wait_for(lambda: (x := device()) and not x["online"], 30, "last will marks the device offline")
    time.sleep(0.1)


def test_gateway_runs_on_postgresql(mosquitto: Mosquitto, gateway_factory: Any, pg_url: str) -> None:
    g = gateway_factory(mosquitto.url, env={"DATABASE_URL": pg_url})
    make_order(g, "PG-1", quantity=2)
    devs = [Peer(mosquitto.url, f"pg-{i}") for i in range(6)]
    try:
        for d in devs:
            d.scan("p-1", "PG-1")
        verdicts = [d.wait_verdict("p-1") for d in devs]
    finally:
        for d in devs:
            d.close()
    assert sum(v["ok"] for v in verdicts) == 2
    g.restart(hard=True)
    assert g.api("GET", "/api/orders/PG-1").json()["used"] == 2
    assert len(ledger(g)) == 6
    from sqlalchemy import create_engine, text

    e = create_engine(pg_url)  # the rows really live in PostgreSQL
    with e.connect() as c:
        assert c.execute(
            text("SELECT count(*), sum(CASE WHEN ok THEN 1 ELSE 0 END) FROM redemptions")
        ).one() == (6, 2)
    e.dispose()


def test_gateway_presence_is_retained_with_a_last_will(gateway: GatewayProc, mosquitto: Mosquitto) -> None:
    seen: list[dict[str, Any]] = []
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="watcher")
    c.on_message = lambda cl, u, m: seen.append(json.loads(m.payload))
    c.connect("127.0.0.1", mosquitto.port)
    c.subscribe("hx/v1/gateway/status", qos=1)
    c.loop_start()
    try:
        wait_for(lambda: seen and seen[-1]["state"] == "online", 15, "retained online")
        assert abs(seen[-1]["t"] - time.time()) < 120, (
            "the devices' clock: Unix seconds, refreshed every 60 s"
        )
        gateway.stop(hard=True)  # a crash: the broker publishes the will
        wait_for(lambda: seen[-1]["state"] == "offline", 60, "last will says offline")
        gateway.start()
        wait_for(lambda: seen[-1]["state"] == "online", 15, "online again")
        gateway.stop()  # a clean stop says offline itself
        wait_for(lambda: seen[-1]["state"] == "offline", 15, "clean stop says offline")
    finally:
        c.loop_stop()
        c.disconnect()


def test_hole_11_scans_taken_but_not_committed_survive_a_crash(
    gateway: GatewayProc, mosquitto: Mosquitto
) -> None:
    """Hole 11: scans in the gateway's queue were acknowledged on receipt and lost with a crash."""
    import sqlite3

    make_order(gateway, "T-ACK", quantity=5)
    dev = Peer(mosquitto.url, "gate-ack")
    try:
        dev.scan("k-0", "T-ACK")
        dev.wait_verdict("k-0")
        lock = sqlite3.connect(gateway.db_path, timeout=30)
        lock.execute("BEGIN IMMEDIATE")  # every write of the gateway now waits: nothing can commit
        try:

            def taken() -> int:  # scans the service is deciding or has queued: delivered to the gateway
                h = gateway.api("GET", "/api/health").json()
                return int(h["mqtt"]["scans"]) + int(h["service"]["queued"])

            before = taken()
            for i in range(1, 4):
                dev.scan(f"k-{i}", "T-ACK")  # this peer never resends: only the broker can redeliver
            wait_for(lambda: taken() >= before + 3, 20, "scans handed to the service")
            gateway.stop(hard=True)  # SIGKILL with three scans taken and none committed
        finally:
            lock.rollback()
            lock.close()
        gateway.start()
        for i in range(1, 4):
            assert dev.wait_verdict(f"k-{i}", 30)["ok"]
    finally:
        dev.close()
    assert gateway.api("GET", "/api/orders/T-ACK").json()["used"] == 4
