# Shared steps of the fault tests: orders for a run, gateways (1 or N workers) and the run's figures.
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.conftest import GatewayProc
from tests.faults.harness import OpenLoad, Proof, prove, record

# The per-device rate limit would turn the resend burst after every fault into RATE_LIMITED rounds (a
# transient answer, resent later): correct, but it only lengthens the drain, as in `make bench`.
FAULT_ENV = {"RATE_LIMIT_PER_S": "0"}


def make_orders(gw: GatewayProc, prefix: str, n: int, quantity: int) -> list[str]:
    codes = [f"{prefix}-{i:03d}" for i in range(n)]
    body = {
        "orders": [
            {
                "code": c,
                "title": "fault",
                "quantity": quantity,
                "site": None,
                "valid_from": None,
                "valid_until": None,
            }
            for c in codes
        ]
    }
    r = gw.api("POST", "/api/orders", json=body)
    assert r.status_code == 201, r.text
    return codes


def gateways(
    factory: Callable[..., GatewayProc], mqtt_url: str, workers: int, db_url: str | None = None
) -> list[GatewayProc]:
    """`workers` gateway processes on one database (SQLite file of the first, or `db_url`)."""
    env = dict(FAULT_ENV)
    if db_url:
        env["DATABASE_URL"] = db_url
    first = factory(mqtt_url, env=env)
    if workers > 1:
        env["DATABASE_URL"] = db_url or f"sqlite:///{first.db_path}"
    return [first] + [factory(mqtt_url, env=env) for _ in range(workers - 1)]


def db_url_of(gw: GatewayProc) -> str:
    return gw.env["DATABASE_URL"]


def finish(name: str, load: OpenLoad, db_url: str, t0: float, **figures: Any) -> Proof:
    """Drain the load, prove the invariants, record the figures; the caller asserts."""
    res = load.drain()
    proof = prove(load, db_url)
    record(
        name,
        sent=proof.sent,
        answered=proof.answered,
        ok=proof.details["ok"],
        lost=proof.lost,
        duplicate_verdicts=proof.duplicate_verdicts,
        double_redemptions=proof.double_redemptions,
        ledger_mismatch=proof.ledger_mismatch,
        resends=res.resends,
        transient_answers=res.transients,
        device_reconnects=res.reconnects,
        drain_s=res.drain_s,
        total_s=round(time.monotonic() - t0, 1),
        **figures,
    )
    return proof
