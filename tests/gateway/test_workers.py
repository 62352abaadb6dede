# Two gateway workers on one PostgreSQL ledger and one broker: one is killed -9 under load, nothing is lost.
from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pydantic import ValidationError
from sqlalchemy import func, select

from gateway.adapters.brokers.mosquitto import Mosquitto
from gateway.adapters.db.engine import make_engine, migrate
from gateway.adapters.db.models import Order, Redemption
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.adapters.mqtt.contract import GATEWAY_OFFLINE, WORKER_STATUS_PREFIX
from gateway.adapters.mqtt.watch import WILL_DELAY_S
from gateway.config import Settings
from gateway.domain.requests import idem_key
from gateway.services.orders import OrderIn, create_orders
from tests.conftest import GatewayProc
from tests.helpers import wait_for

ORDERS = 20
DEVICES = 10
RATE_PER_DEVICE = 8.0  # scans/s, open loop: sent on the clock whatever the answers
LOAD_S = 8.0
KILL_AT_S = 3.0
RESEND_S = 3.0  # like the firmware's outbox: an unanswered scan is sent again


class Device:
    """A scanner's MQTT side with an outbox: every scan is sent until its verdict arrives."""

    def __init__(self, url: str, name: str) -> None:
        p = urlsplit(url)
        self.name = name
        self.lock = threading.Lock()
        self.sent: dict[str, tuple[str, float]] = {}  # sid -> (code, last sent at)
        self.verdicts: dict[str, list[bytes]] = {}
        self.presence: list[bytes] = []
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, clean_session=True)
        self.c.on_message = self._on_message
        ready = threading.Event()
        self.c.on_subscribe = lambda *a: ready.set()
        self.c.connect(p.hostname or "127.0.0.1", p.port or 1883, keepalive=10)
        self.c.loop_start()
        self.c.subscribe([(f"hx/v1/dev/{name}/verdict", 1), ("hx/v1/gateway/status", 1)])
        assert ready.wait(10), "subscription not acknowledged"

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self.lock:
            if msg.topic == "hx/v1/gateway/status":
                self.presence.append(msg.payload)
            else:
                self.verdicts.setdefault(json.loads(msg.payload)["sid"], []).append(msg.payload)

    def scan(self, sid: str, code: str) -> None:
        with self.lock:
            self.sent[sid] = (code, time.monotonic())
        doc = {"v": 1, "sid": sid, "code": code, "qty": 1, "dir": "in", "at": int(time.time())}
        self.c.publish(f"hx/v1/dev/{self.name}/scan", json.dumps(doc), qos=1)

    def resend_due(self) -> int:
        """Send again what waited RESEND_S without a final verdict; how many still wait."""
        now = time.monotonic()
        with self.lock:
            waiting = [(s, c, t) for s, (c, t) in self.sent.items() if not self._final(s)]
        for sid, code, t in waiting:
            if now - t >= RESEND_S:
                self.scan(sid, code)
        return len(waiting)

    def _final(self, sid: str) -> bool:
        got = self.verdicts.get(sid)
        return bool(got) and not json.loads(got[-1]).get("retry")

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def _worker(make: Callable[..., GatewayProc], url: str, pg: str, name: str, tmp: Path) -> GatewayProc:
    env = {"DATABASE_URL": pg, "WORKER_ID": name}  # devices register themselves as they scan
    return make(url, tmp / f"{name}.db", env)


def test_two_workers_survive_a_kill_9_under_load(
    mosquitto: Mosquitto,
    pg_url: str,
    gateway_factory: Callable[..., GatewayProc],
    tmp_path: Path,
) -> None:
    e = make_engine(pg_url)
    migrate(e)
    create_orders(
        SqlDatabase(e), [OrderIn(code=f"POOL{i:02d}", title="Pool", quantity=10_000) for i in range(ORDERS)]
    )
    w1 = _worker(gateway_factory, mosquitto.url, pg_url, "w1", tmp_path)
    w2 = _worker(gateway_factory, mosquitto.url, pg_url, "w2", tmp_path)
    devices = [Device(mosquitto.url, f"dev{d}") for d in range(DEVICES)]
    rng = random.Random(7)
    stop = threading.Event()

    def load(dev: Device) -> None:
        n = 0
        start = time.monotonic()
        while not stop.is_set() and time.monotonic() - start < LOAD_S:
            dev.scan(f"s{n}", f"POOL{rng.randrange(ORDERS):02d}")
            n += 1
            # Open loop: the next scan is due on the clock, not after an answer.
            stop.wait(max(0.0, start + n / RATE_PER_DEVICE - time.monotonic()))

    threads = [threading.Thread(target=load, args=(d,)) for d in devices]
    for t in threads:
        t.start()
    time.sleep(KILL_AT_S)
    served_before = {w.http: _scans(w) for w in (w1, w2)}
    w1.stop(hard=True)  # kill -9 mid-load: whatever it held uncommitted or unanswered is the test
    for t in threads:
        t.join(LOAD_S + 10)

    def all_answered() -> bool:
        return sum(d.resend_due() for d in devices) == 0

    wait_for(all_answered, 40, "a final verdict for every scan", interval=0.5)
    for d in devices:
        d.close()

    sent = {(d.name, sid) for d in devices for sid in d.sent}
    answered = {(d.name, sid): vs for d in devices for sid, vs in d.verdicts.items()}
    assert set(answered) == sent, "lost verdicts"  # 0 lost
    finals = {k: [v for v in vs if not json.loads(v).get("retry")] for k, vs in answered.items()}
    # A resent scan is answered again with the stored verdict, byte for byte: never a second decision.
    assert all(len(set(vs)) == 1 for vs in finals.values()), "a scan got two different verdicts"
    assert all(json.loads(vs[0])["reason"] == "OK" for vs in finals.values())
    with e.connect() as c:
        rows = c.execute(select(Redemption.idem_key, Redemption.ok, Redemption.qty)).all()
        used = c.execute(select(func.sum(Order.used))).scalar_one()
    keys = Counter(r.idem_key for r in rows)
    assert not [k for k, n in keys.items() if n > 1], "a scan recorded twice"  # 0 double redemptions
    assert set(keys) == {idem_key(dev, sid) for dev, sid in sent}  # ledger = verdicts
    assert used == sum(r.qty for r in rows if r.ok) == len(sent)
    # Both workers served before the kill (the broker split the load), the survivor after it.
    assert all(n > 0 for n in served_before.values()), served_before
    assert _scans(w2) > served_before[w2.http]
    # The devices' gateway presence never said offline, though a worker died.
    presence = [json.loads(p) for d in devices for p in d.presence]
    assert presence and all(p["state"] == "online" for p in presence), presence
    e.dispose()


def _scans(w: GatewayProc) -> int:
    r = httpx.get(w.http + "/api/health", timeout=5)
    return int(r.json()["mqtt"]["scans"])


def test_a_clean_stop_of_one_worker_leaves_the_devices_online(
    mosquitto: Mosquitto,
    pg_url: str,
    gateway_factory: Callable[..., GatewayProc],
    tmp_path: Path,
) -> None:
    w1 = _worker(gateway_factory, mosquitto.url, pg_url, "w1", tmp_path)
    w2 = _worker(gateway_factory, mosquitto.url, pg_url, "w2", tmp_path)
    dev = Device(mosquitto.url, "watcher")
    wait_for(lambda: dev.presence, 10, "the retained presence")
    w1.stop()
    time.sleep(1)  # what a device would read right after
    w2.stop()
    wait_for(lambda: json.loads(dev.presence[-1])["state"] == "offline", 10, "offline once none serves")
    states = [json.loads(p)["state"] for p in dev.presence]
    assert states[-1] == "offline" and "offline" not in states[:-1], states
    dev.close()


def test_the_devices_see_offline_only_when_the_last_worker_is_killed(
    mosquitto: Mosquitto,
    pg_url: str,
    gateway_factory: Callable[..., GatewayProc],
    tmp_path: Path,
) -> None:
    """kill -9 leaves no goodbye: one worker's death must not say offline (the survivor cancels its
    delayed will), the last one's must (nobody is left to cancel it; adapters/mqtt/watch.py)."""
    w1 = _worker(gateway_factory, mosquitto.url, pg_url, "w1", tmp_path)
    w2 = _worker(gateway_factory, mosquitto.url, pg_url, "w2", tmp_path)
    dev = Device(mosquitto.url, "watcher")
    wait_for(lambda: dev.presence, 10, "the retained presence")
    w1.stop(hard=True)
    time.sleep(WILL_DELAY_S + 3)  # past the moment the dead worker's will would have been sent
    states = [json.loads(p)["state"] for p in dev.presence]
    assert "offline" not in states, states
    w2.stop(hard=True)
    wait_for(lambda: json.loads(dev.presence[-1])["state"] == "offline", WILL_DELAY_S + 30, "offline")
    dev.close()


def test_a_live_worker_whose_watch_a_peer_cancelled_still_says_offline_when_it_dies(
    mosquitto: Mosquitto,
    pg_url: str,
    gateway_factory: Callable[..., GatewayProc],
    tmp_path: Path,
) -> None:
    """A worker's main connection can drop while it lives (its will says it is gone; its watch is still
    up): the peer then takes over the live watch session to cancel its will. The worker's watch must
    come back with its will, or its later death, as the last worker, never says offline."""
    w1 = _worker(gateway_factory, mosquitto.url, pg_url, "w1", tmp_path)
    w2 = _worker(gateway_factory, mosquitto.url, pg_url, "w2", tmp_path)
    dev = Device(mosquitto.url, "watcher")
    wait_for(lambda: dev.presence, 10, "the retained presence")
    # What the broker publishes when w1's main connection is lost: its presence will.
    dev.c.publish(WORKER_STATUS_PREFIX + "w1", GATEWAY_OFFLINE, qos=1).wait_for_publish(5)
    time.sleep(WILL_DELAY_S + 3)  # w2 cancelled w1's watch; w1's watch reconnected
    w2.stop(hard=True)  # w1 cancels w2's will: it serves on
    time.sleep(WILL_DELAY_S + 3)
    states = [json.loads(p)["state"] for p in dev.presence]
    assert "offline" not in states, states
    w1.stop(hard=True)  # the last worker dies: only its watch's will can say so
    wait_for(lambda: json.loads(dev.presence[-1])["state"] == "offline", WILL_DELAY_S + 30, "offline")
    dev.close()


def test_a_second_gateway_on_one_sqlite_file_is_refused(
    mosquitto: Mosquitto, gateway_factory: Callable[..., GatewayProc], tmp_path: Path
) -> None:
    first = gateway_factory(mosquitto.url, tmp_path / "one.db")
    second = GatewayProc(mosquitto.url, tmp_path / "one.db", tmp_path / "second")
    with pytest.raises(AssertionError, match="another gateway process already serves"):
        second.start()
    second.stop()
    assert httpx.get(first.http + "/api/health", timeout=5).json()["ok"]  # the first one serves on


def test_workers_need_postgresql_and_a_broker_of_their_own(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="several workers need one ledger"):
        Settings(var_dir=tmp_path, worker_id="w1", mqtt_url="mqtt://127.0.0.1:1883")
    with pytest.raises(ValidationError, match="workers share one broker"):
        Settings(var_dir=tmp_path, worker_id="w1", database_url="postgresql://x@127.0.0.1/db")
    assert Settings(
        var_dir=tmp_path, worker_id="w1", database_url="postgresql://x@h/db", mqtt_url="mqtt://127.0.0.1:1"
    ).workers
