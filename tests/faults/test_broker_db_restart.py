# The broker killed and restarted under load; PostgreSQL crashed and restarted under load (its own cluster).
from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from gateway.adapters.brokers.mosquitto import Mosquitto
from tests import pg
from tests.conftest import GatewayProc
from tests.faults.conftest import Scale
from tests.faults.harness import OpenLoad
from tests.faults.steps import db_url_of, finish, gateways, make_orders
from tests.helpers import wait_for

DOWN_S = 3.0  # how long the broker / database stays away


def _health(gw: GatewayProc) -> dict[str, object]:
    try:
        r = gw.api("GET", "/api/health")
        return dict(r.json()) if r.status_code == 200 else {}
    except Exception:  # noqa: BLE001 - a gateway that does not answer is "not healthy", not a test error
        return {}


@pytest.mark.chaos_only
def test_broker_killed_and_restarted_under_load(
    mosquitto: Mosquitto, gateway_factory: Callable[..., GatewayProc], chaos: Scale
) -> None:
    (gw,) = gateways(gateway_factory, mosquitto.url, 1)
    codes = make_orders(gw, "brk", 20, quantity=max(3, int(chaos.rate * chaos.load_s) // 40))
    load = OpenLoad(mosquitto.host, mosquitto.port, codes, rate=chaos.rate, tag="b")
    t0 = time.monotonic()
    try:
        load.start(chaos.load_s)
        time.sleep(chaos.load_s / 3)
        assert mosquitto.proc is not None
        mosquitto.proc.kill()  # SIGKILL: in-flight QoS 1 messages on the broker are gone
        mosquitto.proc.wait(10)
        mosquitto.proc = None
        time.sleep(DOWN_S)
        mosquitto.start()
        t_up = time.monotonic()
        wait_for(lambda: (_health(gw).get("mqtt") or {}).get("connected"), 30, "gateway back on the broker")  # type: ignore[union-attr]
        reconnect_s = time.monotonic() - t_up
        proof = finish(
            "broker_kill",
            load,
            db_url_of(gw),
            t0,
            broker_down_s=DOWN_S,
            gateway_reconnect_s=round(reconnect_s, 1),
        )
    finally:
        load.close()
    assert proof.sent > 0 and proof.answered == proof.sent
    proof.assert_clean()


@pytest.fixture
def cluster() -> Iterator[pg.Cluster]:
    c = pg.Cluster()
    try:
        c.start()
        yield c
    finally:
        c.remove()


@pytest.mark.chaos_only
def test_postgres_crashed_and_restarted_under_load(
    mosquitto: Mosquitto, gateway_factory: Callable[..., GatewayProc], chaos: Scale, cluster: pg.Cluster
) -> None:
    with pg.database(cluster.url) as db_url:
        gws = gateways(gateway_factory, mosquitto.url, chaos.workers, db_url=db_url)
        codes = make_orders(gws[0], "pgr", 20, quantity=max(3, int(chaos.rate * chaos.load_s) // 40))
        load = OpenLoad(mosquitto.host, mosquitto.port, codes, rate=chaos.rate, tag="p")
        t0 = time.monotonic()
        try:
            load.start(chaos.load_s)
            time.sleep(chaos.load_s / 3)
            cluster.stop("immediate")  # a crash: no checkpoint, WAL recovery at the next start
            time.sleep(DOWN_S)
            cluster.start()
            proof = finish("postgres_crash", load, db_url, t0, workers=chaos.workers, db_down_s=DOWN_S)
            alive = [g.proc is not None and g.proc.poll() is None for g in gws]
        finally:
            load.close()
    assert all(alive), "a gateway died with its database instead of waiting for it"
    assert proof.sent > 0 and proof.answered == proof.sent
    proof.assert_clean()
