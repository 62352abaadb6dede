# Hypothesis-made scan and status payloads against the real gateway and broker: invalid input is answered
# MALFORMED (when its sid is readable) or dropped, changes no table, and never takes the gateway down.
from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from gateway.adapters.brokers.mosquitto import Mosquitto
from tests.conftest import GatewayProc
from tests.faults.harness import record
from tests.fuzz.state import digest
from tests.helpers import wait_for

FULL = os.environ.get("HX_CHAOS", "") == "full"
EXAMPLES = 1500 if FULL else 150
DEV = "fz-dev"

_good = {"v": 1, "sid": "s", "code": "FZ-ORDER", "qty": 1, "dir": "in", "at": 1}
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=12,
)
# One field broken per payload, so every generated scan is invalid by construction (contract/topics.json).
_breakers: dict[str, st.SearchStrategy[Any]] = {
    "v": st.integers().filter(lambda v: v != 1)
    | st.text(max_size=5)
    | st.none()
    | st.just(1.0)
    | st.just(True),
    "qty": st.integers(max_value=0)
    | st.integers(min_value=100)
    | st.text(max_size=3)
    | st.just(1.5)
    | st.just(True),
    "dir": st.text(max_size=8).filter(lambda d: d not in ("in", "out")) | st.integers(),
    "code": st.text(min_size=129, max_size=200)
    | st.integers()
    | st.lists(st.text(max_size=3), max_size=2)
    | st.text(alphabet=st.characters(max_codepoint=31), min_size=1, max_size=5),
    "at": st.integers(max_value=-1) | st.integers(min_value=4102444801) | st.text(max_size=5),
    "op": st.text(max_size=8).filter(lambda o: o not in ("redeem", "check", "annul", "login", "logout")),
    "amt": st.integers(max_value=0) | st.integers(min_value=10_000_001),
}


@st.composite
def bad_scan(draw: st.DrawFn, n: list[int]) -> tuple[bytes, str | None]:
    """(payload, the sid the gateway can read and must answer, or None)."""
    kind = draw(st.sampled_from(["field", "field", "field", "missing", "binary", "json", "big", "deep"]))
    n[0] += 1
    sid = f"z{n[0]:x}"
    if kind == "binary":
        return draw(st.binary(max_size=600)), None
    if kind == "json":
        doc = draw(_json)
        return json.dumps(doc).encode(), None if not isinstance(doc, dict) or "sid" not in doc else "?"
    if kind == "deep":
        depth = draw(st.integers(100, 5000))
        return b"[" * depth + b"]" * depth, None
    doc = dict(_good, sid=sid)
    if kind == "missing":
        del doc[draw(st.sampled_from(["v", "code"]))]
    elif kind == "big":
        doc["pad"] = "x" * draw(st.integers(1025, 20000))
        return json.dumps(doc).encode(), sid if len(json.dumps(doc)) <= 16 * 1024 else None
    else:
        field = draw(st.sampled_from(sorted(_breakers)))
        doc[field] = draw(_breakers[field])
    return json.dumps(doc).encode(), sid


_bad_status = (
    st.binary(min_size=1, max_size=300)
    | _json.filter(
        lambda d: not (isinstance(d, dict) and d.get("v") == 1 and d.get("state") in ("online", "offline"))
    ).map(lambda d: json.dumps(d).encode())
    | st.builds(
        lambda s: json.dumps({"v": 1, "state": s}).encode(),
        st.text(max_size=8).filter(lambda s: s not in ("online", "offline")),
    )
    | st.just(json.dumps({"v": 1, "state": "online", "pad": "x" * 2000}).encode())
)


class Client:
    def __init__(self, mosq: Mosquitto) -> None:
        self.verdicts: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fz-client", clean_session=True)
        self.c.on_message = self._on
        self.c.connect(mosq.host, mosq.port)
        self.c.loop_start()
        self.c.subscribe(f"hx/v1/dev/{DEV}/verdict", qos=1)
        time.sleep(0.3)

    def _on(self, cl: Any, u: Any, m: Any) -> None:
        doc = json.loads(m.payload)
        with self.lock:
            self.verdicts[doc["sid"]] = doc

    def pub(self, kind: str, payload: bytes) -> None:
        self.c.publish(f"hx/v1/dev/{DEV}/{kind}", payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def test_fuzzed_scan_and_status_payloads_change_nothing(
    mosquitto: Mosquitto, gateway_factory: Callable[..., GatewayProc]
) -> None:
    gw = gateway_factory(mosquitto.url)
    r = gw.api(
        "POST",
        "/api/orders",
        json={
            "orders": [
                {
                    "code": "FZ-ORDER",
                    "title": "fuzz",
                    "quantity": 3,
                    "site": None,
                    "valid_from": None,
                    "valid_until": None,
                }
            ]
        },
    )
    assert r.status_code == 201
    cl = Client(mosquitto)
    before = digest(gw.db_path)
    expect: list[str] = []
    n = [0]
    sent = {"scan": 0, "status": 0}

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(scan=bad_scan(n), status=_bad_status)
    def one(scan: tuple[bytes, str | None], status: bytes) -> None:
        payload, sid = scan
        cl.pub("scan", payload)
        cl.pub("status", status)
        sent["scan"] += 1
        sent["status"] += 1
        if sid and sid != "?":
            expect.append(sid)

    try:
        one()
        wait_for(
            lambda: all(s in cl.verdicts for s in expect),
            60,
            f"MALFORMED answers for {len(expect)} readable sids",
        )
        answers = {s: (cl.verdicts[s]["ok"], cl.verdicts[s]["reason"]) for s in expect}
        after = digest(gw.db_path)
        # Still serving: a valid scan after all that is decided normally.
        cl.pub("scan", json.dumps(dict(_good, sid="probe", at=int(time.time()))).encode())
        probe = wait_for(lambda: cl.verdicts.get("probe"), 30, "the probe scan's verdict")
    finally:
        cl.close()
    health = gw.api("GET", "/api/health").json()
    record(
        "fuzz_mqtt",
        scans=sent["scan"],
        statuses=sent["status"],
        answered_malformed=len(expect),
        dropped=health.get("mqtt", {}).get("dropped"),
    )
    wrong = {s: a for s, a in answers.items() if a != (False, "MALFORMED")}
    assert not wrong, f"invalid scans not answered MALFORMED: {dict(list(wrong.items())[:10])}"
    assert after == before, f"invalid input changed the database: {before} -> {after}"
    assert probe["ok"] is True, probe
    assert gw.proc is not None and gw.proc.poll() is None
    assert "Traceback" not in gw.log(), gw.log()[-3000:]
