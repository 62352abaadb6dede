# Runs load scenarios end to end: brings up (or points at) broker + gateway, creates orders, runs, checks the ledger.
from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.loadgen.client import connect_devices
from tools.loadgen.modes import RunResult, Target, run_tag
from tools.loadgen.procs import (
    BenchError,
    GatewayProcess,
    Rest,
    TunedMosquitto,
    require_loopback,
    split_mqtt_url,
)
from tools.loadgen.profile import Recorder
from tools.loadgen.stats import PidGroup, Tally

# Every scan of a run redeems 1 unit of one of its orders; with this many units per order none runs out,
# so every verdict should be OK and the ledger's count of used units must equal the OK verdicts.
UNITS_PER_ORDER = 1_000_000

# The gateway's per-device rate limit (RATE_LIMIT_PER_S, default 20/s) exists to stop one broken scanner
# flooding the ledger; 200 simulated devices at saturation each scan faster than a real gate ever could,
# so the benchmark turns it off to measure redemption throughput rather than the limiter.
# Load devices register themselves (unplaced), as many as the run has, without the registration limit.
BENCH_GATEWAY_ENV = {
    "RATE_LIMIT_PER_S": "0",
    "LOG_LEVEL": "WARNING",
    "AUTO_REGISTER_SITE": "bench",
    "AUTO_REGISTER_PER_MIN": "0",
}


@dataclass(slots=True)
class System:
    """The broker and gateway under test: where to send load, where the REST API is, whose CPU to read."""

    mqtt_host: str
    mqtt_port: int
    rest: Rest | None
    pids: dict[str, int] = field(default_factory=dict)
    workdir: Path | None = None
    gateway: GatewayProcess | None = None
    exclusive: bool = False  # nothing but this benchmark redeems on this gateway (so its ledger is ours)
    groups: dict[str, PidGroup] = field(default_factory=dict)  # CPU summed over several processes


@contextlib.contextmanager
def spawned_system(
    gateway_env: dict[str, str] | None = None,
    keep_workdir: bool = False,
    broker_extra: Sequence[str] = (),
) -> Iterator[System]:
    """Our own Mosquitto on a free loopback port and `python -m gateway run --no-demo` on a fresh SQLite file.

    `broker_extra`: more mosquitto.conf lines (a scenario's limits, e.g. `max_connections`)."""
    workdir = Path(tempfile.mkdtemp(prefix="hexiao-bench-"))
    broker = TunedMosquitto(workdir=workdir / "broker", port=0, bind="127.0.0.1", extra=broker_extra)
    gw: GatewayProcess | None = None
    try:
        broker.start()
        env = dict(BENCH_GATEWAY_ENV)
        env.update(gateway_env or {})
        gw = GatewayProcess(broker.url, workdir / "gateway", env=env)
        gw.start()
        pids: dict[str, int] = {}
        if gw.pid is not None:
            pids["gateway"] = gw.pid
        if broker.proc is not None:
            pids["broker"] = broker.proc.pid
        rest = Rest(gw.http, token=gw.token)
        yield System(broker.host, broker.port, rest, pids, workdir, gw, exclusive=True)
    finally:
        if gw is not None:
            gw.stop()
        broker.stop()
        if not keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)


def external_system(
    mqtt_url: str, http: str | None, pids: dict[str, int], token: str | None = None
) -> System:
    host, port = split_mqtt_url(mqtt_url)
    require_loopback(host)
    return System(host, port, Rest(http, token=token) if http else None, dict(pids))


async def probe(host: str, port: int, timeout: float = 30.0) -> float:
    """Wait until the gateway answers a scan end to end (its subscription is in place, caches are warm).

    Scans an unknown code, so the probe redeems nothing; resends with a new scan id every second.
    Returns the seconds it took.
    """
    tally = Tally()
    [dev] = await connect_devices(host, port, [f"lgprobe{run_tag()}"], tally)
    start = time.perf_counter()
    try:
        n = 0
        while time.perf_counter() - start < timeout:
            n += 1
            dev.send_scan(f"p{n}", "LG-PROBE-NO-SUCH-ORDER")
            for _ in range(100):
                if tally.answered:
                    return time.perf_counter() - start
                await asyncio.sleep(0.01)
        raise BenchError(f"the gateway answered no scan within {timeout:.0f} s")
    finally:
        dev.disconnect()


def run_scenario(
    system: System,
    name: str,
    scenario: Callable[[Target], Coroutine[Any, Any, RunResult]],
    n_orders: int,
    codes: list[str] | None = None,
    units: int = UNITS_PER_ORDER,
    profile_to: Path | None = None,
) -> RunResult:
    """Create this run's orders (unless codes are given), run the load, then read the ledger back.

    With `units` per order large, every scan should redeem; with 1, each order redeems exactly once and
    every further scan of it must be denied (ALREADY_USED) — the ledger shows which happened.
    """
    if codes:
        own = False
    elif system.rest is None:
        raise BenchError("no REST API to create orders: give --http or --code")
    else:
        tag = run_tag()
        codes = [f"LG-{tag}-{name}-{i:04d}" for i in range(n_orders)]
        system.rest.create_orders(codes, units, title=f"Load test {name}")
        own = True
    before = {c: system.rest.used(c) for c in codes} if system.rest is not None and not own else {}
    target = Target(system.mqtt_host, system.mqtt_port, codes, system.pids, system.groups)
    recorder = None
    if profile_to is not None and "gateway" in system.pids:
        recorder = Recorder(system.pids["gateway"], profile_to)
    since = time.time()
    try:
        result = asyncio.run(scenario(target))
    finally:
        if recorder is not None:
            recorder.stop()
    until = time.time() + 1.0
    if system.rest is not None:
        # Two independent views of the books: units used on this run's orders, and — when the gateway
        # is ours, so nothing else redeems meanwhile — the OK redemption records written during the run.
        result.ledger_ok = sum(system.rest.used(c) - before.get(c, 0) for c in codes)
        if system.exclusive:
            result.ledger_rows_ok = system.rest.ok_redemptions_between(since, until)
    return result
