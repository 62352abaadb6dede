# Regression tests for the service loop's trust holes (batches, acks, back-pressure, clocks, order of checks).
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from gateway.adapters.db.models import Device, Redemption, Site
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.adapters.db.repositories.writer import SqlWriter
from gateway.adapters.mqtt.transport import mqtt_transport
from gateway.domain.errors import Unavailable
from gateway.domain.requests import Request
from gateway.services import ledger as ledger_module
from gateway.services.auto_checkout import run_checkouts
from gateway.services.messages import Inbound
from gateway.services.redeem import ConsoleRedeem, RedemptionService
from tests.gateway.trust_fixtures import add_order, add_site, at, ledger, order

T0 = at("2026-11-23 10:00")


@pytest.fixture
def e(tmp_path: Path, request: pytest.FixtureRequest) -> Engine:
    eng = ledger("sqlite", tmp_path, request)
    add_site(eng, "zoo")
    return eng


class Wire:
    """What the service publishes, by device: the verdicts as the devices would read them."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, topic: str, payload: str) -> None:
        self.sent.append((topic.split("/")[3], json.loads(payload)))

    def verdicts(self, device: str | None = None) -> list[dict[str, Any]]:
        return [v for d, v in self.sent if device is None or d == device]


def service(e: Engine, wire: Wire, **kw: Any) -> RedemptionService:
    kw.setdefault("clock", lambda: T0)
    return RedemptionService(
        SqlDatabase(e),
        SqlWriter(e),
        mqtt_transport(wire),
        auto_register_site="zoo",
        default_tz="Asia/Shanghai",
        **kw,
    )


def msg(device: str, body: dict[str, Any] | bytes, ack: Any = None) -> Inbound:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Inbound(f"hx/v1/dev/{device}/scan", payload, ack or (lambda: None))


def test_hole_9_schema_version_true_is_malformed(e: Engine) -> None:
    """Hole 9: over MQTT `{"v": true, ...}` was taken as schema version 1 and redeemed."""
    add_order(e, "T", 1)
    wire = Wire()
    service(e, wire).process([msg("d1", {"v": True, "sid": "1", "code": "T"})])
    assert [(v["sid"], v["reason"]) for v in wire.verdicts()] == [("1", "MALFORMED")]
    assert order(e, "T").used == 0


def test_hole_10_a_deeply_nested_scan_does_not_sink_its_batch(e: Engine) -> None:
    """Hole 10: a 2 KB scan nested 1,000 deep raised RecursionError and 40 devices got no verdict."""
    add_order(e, "POOL", 100)
    poison = b'{"v":1,"sid":"p","x":' + b"[" * 1000 + b"]" * 1000 + b"}"
    batch = [msg(f"d{i}", {"v": 1, "sid": "1", "code": "POOL"}) for i in range(40)]
    batch.insert(20, msg("bad", poison))
    wire = Wire()
    # 40 devices seen for the first time at once: more than auto-registration lets in per minute.
    service(e, wire, auto_register_per_min=100.0).process(batch)
    oks = [v for v in wire.verdicts() if v["ok"]]
    assert len(oks) == 40
    assert order(e, "POOL").used == 40


def test_hole_10_one_failing_decision_gets_internal_alone(e: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hole 10: any non-database exception answered INTERNAL for every scan of the batch."""
    add_order(e, "GOOD", 10)
    add_order(e, "POISON", 10)
    real = ledger_module.decide

    def decide(o: Any, *a: Any) -> Any:
        if o is not None and o.code == "POISON":  # a value no rule expected: fault injected here only
            raise ValueError("unexpected")
        return real(o, *a)

    monkeypatch.setattr(ledger_module, "decide", decide)
    wire = Wire()
    service(e, wire).process(
        [msg(f"d{i}", {"v": 1, "sid": "1", "code": "POISON" if i == 3 else "GOOD"}) for i in range(8)]
    )
    got = {d: v["reason"] for d, v in wire.sent}
    assert got.pop("d3") == "INTERNAL"
    assert set(got.values()) == {"OK"} and len(got) == 7
    assert wire.verdicts("d3")[0]["retry"] is True  # transient: the device keeps the scan
    assert order(e, "GOOD").used == 7


def test_hole_11_a_scan_is_acknowledged_only_after_its_commit(e: Engine) -> None:
    """Hole 11: the broker's acknowledgement came on receipt; a crash then lost the queued scans."""
    add_order(e, "ACK", 1)
    seen_at_ack: list[int] = []

    def ack() -> None:  # reads through another connection: only committed rows are visible
        with e.connect() as c:
            seen_at_ack.append(len(c.execute(select(Redemption.id)).all()))

    wire = Wire()
    svc = service(e, wire)
    svc.submit_mqtt("hx/v1/dev/d1/scan", json.dumps({"v": 1, "sid": "1", "code": "ACK"}).encode(), ack)
    assert seen_at_ack == []  # handing over is not acknowledging
    svc.process([svc.q.get_nowait()])  # type: ignore[list-item]
    assert seen_at_ack == [1]
    assert wire.verdicts()[0]["ok"]


def test_hole_12_the_network_thread_never_blocks(e: Engine) -> None:
    """Hole 12: a full service queue blocked paho's network thread (keepalive stopped)."""
    svc = service(e, Wire(), queue_max=3)
    for i in range(50):  # the service is not even running: nothing drains
        svc.submit_mqtt("hx/v1/dev/d1/scan", json.dumps({"v": 1, "sid": str(i), "code": "X"}).encode())
    assert svc.q.qsize() == 50
    req = ConsoleRedeem(Request("web-ana", "r1", "X", 1, "in", None, user="ana"), None, "console", "UTC")
    with pytest.raises(Unavailable, match="same idempotency key"):
        svc.submit_console(req)


def test_hole_14_rate_limits_ignore_wall_clock_steps(e: Engine) -> None:
    """Hole 14: an NTP step back of one hour locked a rate-limited device out for an hour."""
    add_order(e, "RL", 100)
    wall = [T0]
    mono = [1000.0]
    wire = Wire()
    svc = service(e, wire, clock=lambda: wall[0], monotonic=lambda: mono[0], rate_limit_per_s=1.0)
    svc.process([msg("d1", {"v": 1, "sid": "1", "code": "RL"})])
    wall[0] -= 3600  # the wall clock jumps back an hour
    mono[0] += 5  # five real seconds later
    svc.process([msg("d1", {"v": 1, "sid": "2", "code": "RL"})])
    assert [v["reason"] for v in wire.verdicts()] == ["OK", "OK"]


def test_hole_14_device_time_must_be_finite_and_bounded(e: Engine) -> None:
    """Hole 14: `at: 1e999` was accepted as infinity and poisoned outbound webhooks."""
    add_order(e, "AT", 1)
    wire = Wire()
    raw = b'{"v":1,"sid":"1","code":"AT","at":1e999}'
    service(e, wire).process([msg("d1", raw), msg("d2", {"v": 1, "sid": "1", "code": "AT", "at": 5e9})])
    assert [v["reason"] for v in wire.verdicts()] == ["MALFORMED", "MALFORMED"]
    assert order(e, "AT").used == 0


def test_hole_14_check_out_resumes_after_a_restart(e: Engine) -> None:
    """Hole 14: auto check-out was skipped when the gateway restarted across the check-out time."""
    site = add_site(e, "park", auto_checkout="23:00")
    run_checkouts(SqlDatabase(e), None, at("2026-11-23 22:00"))  # the gateway ran until 22:00 ...
    add_order(e, "EVE", 1, site_id=site, inside=1, inside_site_id=site, rules={"passback": True})
    assert run_checkouts(SqlDatabase(e), None, at("2026-11-23 22:30")) == 0
    # ... was down across 23:00, and a new process starts at 23:30: it resumes from the stored cursor.
    assert run_checkouts(SqlDatabase(e), None, at("2026-11-23 23:30")) == 1
    assert order(e, "EVE").inside == 0
    with e.connect() as c:
        assert c.execute(select(Site.checkout_cursor).where(Site.id == site)).scalar_one() == at(
            "2026-11-23 23:30"
        )


def test_hole_15_a_committed_ok_is_replayed_before_transient_checks(e: Engine) -> None:
    """Hole 15: after REQUIRE_SIGNED was turned on, the retry of a committed OK was answered FORGED."""
    add_order(e, "HX-PLAIN", 1)
    first = Wire()
    service(e, first, signing_key=b"k").process([msg("d1", {"v": 1, "sid": "1", "code": "HX-PLAIN"})])
    assert first.verdicts()[0]["ok"]
    retry = Wire()
    strict = service(e, retry, signing_key=b"k", require_signed=True, rate_limit_per_s=0.001)
    strict.process([msg("d1", {"v": 1, "sid": "1", "code": "HX-PLAIN"})] * 3)
    assert [v["reason"] for v in retry.verdicts()] == ["OK", "OK", "OK"]
    strict.process([msg("d1", {"v": 1, "sid": "2", "code": "HX-PLAIN"})])  # a new scan is judged now
    assert retry.verdicts()[-1]["reason"] == "FORGED"


def test_hole_2_reserved_device_ids_are_not_registered(e: Engine) -> None:
    """Hole 2: a device may not take the ids people and system actions are shown under."""
    wire = Wire()
    service(e, wire).process(
        [msg(d, {"v": 1, "sid": "1", "code": "X"}) for d in ("web-api", "revert", "ok-1")]
    )
    assert [(d, v["reason"]) for d, v in wire.sent] == [
        ("web-api", "UNKNOWN_DEVICE"),
        ("revert", "UNKNOWN_DEVICE"),
        ("ok-1", "UNKNOWN_CODE"),
    ]
    with e.connect() as c:
        assert [r[0] for r in c.execute(select(Device.device_id))] == ["ok-1"]
