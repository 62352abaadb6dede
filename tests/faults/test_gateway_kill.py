# kill -9 of the gateway every few seconds under open-loop load: nothing lost, doubled or over-redeemed.
from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable

from gateway.adapters.brokers.mosquitto import Mosquitto
from tests import pg
from tests.conftest import GatewayProc
from tests.faults.conftest import Scale
from tests.faults.harness import OpenLoad
from tests.faults.steps import db_url_of, finish, gateways, make_orders


def test_gateway_killed_every_few_seconds_under_load(
    mosquitto: Mosquitto, gateway_factory: Callable[..., GatewayProc], chaos: Scale
) -> None:
    with contextlib.ExitStack() as stack:
        # One process: its SQLite file. Workers share one ledger: PostgreSQL (HX_CHAOS_WORKERS=2).
        db_url = None
        if chaos.workers > 1:
            db_url = stack.enter_context(pg.database(stack.enter_context(pg.server())))
        _run(mosquitto, gateway_factory, chaos, db_url)


def _run(
    mosquitto: Mosquitto, gateway_factory: Callable[..., GatewayProc], chaos: Scale, db_url: str | None
) -> None:
    gws = gateways(gateway_factory, mosquitto.url, chaos.workers, db_url=db_url)
    expected = int(chaos.rate * chaos.kill_for_s)
    codes = make_orders(gws[0], "kill", 30, quantity=max(3, expected // 60))
    load = OpenLoad(mosquitto.host, mosquitto.port, codes, rate=chaos.rate, tag="k")
    rng = random.Random(5)
    kills, restart_s = 0, []
    t0 = time.monotonic()
    try:
        load.start(chaos.kill_for_s)
        # On a fixed cadence (t0 + k * every), not `every` after the restart: a worker that takes a
        # while to come back is killed again sooner, as the "every 5 s" means.
        next_kill = t0 + chaos.kill_every_s
        while load.running():
            time.sleep(max(0.0, next_kill - time.monotonic()))
            next_kill += chaos.kill_every_s
            if not load.running():
                break
            victim = rng.choice(gws)
            victim.stop(hard=True)  # SIGKILL: no flush, no goodbye
            kills += 1
            t = time.monotonic()
            victim.start()
            restart_s.append(time.monotonic() - t)
        proof = finish(
            "gateway_kill",
            load,
            db_url_of(gws[0]),
            t0,
            workers=chaos.workers,
            kills=kills,
            restart_s_max=round(max(restart_s, default=0), 1),
        )
    finally:
        load.close()
    assert kills >= 1, "the gateway was never killed: the test proved nothing"
    assert proof.sent > 0 and proof.answered == proof.sent
    proof.assert_clean()
