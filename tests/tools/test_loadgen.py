# A tiny bounded load through a real Mosquitto and a real gateway: every scan answered once, ledger agrees.
from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.adapters.brokers.mosquitto import Mosquitto
from tools.loadgen.__main__ import main
from tools.loadgen.bench import BENCH_GATEWAY_ENV, System, probe, run_scenario
from tools.loadgen.modes import RunResult, run_open, run_saturate, run_single
from tools.loadgen.procs import Rest

pytestmark = pytest.mark.slow


@pytest.fixture
def system(mosquitto: Mosquitto, gateway_factory: Callable[..., Any]) -> System:
    gw = gateway_factory(mosquitto.url, env=BENCH_GATEWAY_ENV)
    assert mosquitto.proc is not None and gw.proc is not None
    pids = {"gateway": gw.proc.pid, "broker": mosquitto.proc.pid}
    sut = System(mosquitto.host, mosquitto.port, Rest(gw.http, token=gw.token), pids, exclusive=True)
    asyncio.run(probe(sut.mqtt_host, sut.mqtt_port))
    return sut


def _assert_all_redeemed(r: RunResult, sent: int) -> None:
    assert r.sent == sent
    assert (r.answered, r.lost, r.duplicates, r.strays, r.misrouted, r.bad_verdicts) == (sent, 0, 0, 0, 0, 0)
    assert r.reasons == {"OK": sent}
    assert r.ok == sent
    assert r.ledger_ok == sent  # the gateway's own books: units used on this run's orders…
    assert r.ledger_rows_ok == sent  # …and the OK redemption records it wrote meanwhile
    assert r.unacked_publishes == 0
    assert r.clean


def test_bounded_load_every_scan_redeemed_once(system: System) -> None:
    single = run_scenario(system, "single", functools.partial(run_single, scans=20), n_orders=3)
    _assert_all_redeemed(single, 20)
    opened = run_scenario(
        system, "open", functools.partial(run_open, rate=100, seconds=1, n_devices=5, seed=3), n_orders=7
    )
    _assert_all_redeemed(opened, 100)
    # 5 devices x 2 in flight, stopped by count: exactly 100 scans.
    sat = run_scenario(
        system,
        "saturate",
        functools.partial(run_saturate, n_devices=5, window=2, seconds=30, warmup=0, max_scans=100),
        n_orders=4,
    )
    _assert_all_redeemed(sat, 100)
    assert sat.cpu.seconds["gateway"] is not None and sat.cpu.seconds["broker"] is not None


def test_single_use_orders_redeem_exactly_once_under_load(system: System) -> None:
    # 20 single-use orders scanned 5 times each by 5 devices at once: exactly 20 OK, 80 ALREADY_USED.
    r = run_scenario(
        system,
        "race",
        functools.partial(run_saturate, n_devices=5, window=4, seconds=30, warmup=0, max_scans=100),
        n_orders=20,
        units=1,
    )
    assert r.sent == r.answered == 100
    assert (r.lost, r.duplicates, r.strays, r.misrouted, r.bad_verdicts) == (0, 0, 0, 0, 0)
    assert r.reasons == {"OK": 20, "ALREADY_USED": 80}
    assert r.ok == r.ledger_ok == r.ledger_rows_ok == 20


def test_make_bench_command_runs_end_to_end_and_writes_markdown(tmp_path: Path) -> None:
    # What `make bench` runs, shrunk: starts its own broker and gateway, runs (a), (b), (c), stops them.
    md = tmp_path / "bench.md"
    argv = ["all", "--scans", "10", "--open-rate", "50", "--open-seconds", "0.4", "--open-devices", "2"]
    argv += [
        "--sat-devices",
        "3",
        "--sat-seconds",
        "0.5",
        "--warmup",
        "0",
        "--orders",
        "2",
        "--markdown",
        str(md),
    ]
    assert main(argv) == 0  # exit status reflects lost/duplicate/ledger checks only, never speed
    text = md.read_text()
    assert "| (a) 1 in flight, 10 scans | 10 | 10 | 10 | 10 | 0 | 0 |" in text
    assert "| (b) open 50/s poisson, 0.4 s, 2 dev | 20 | 20 | 20 | 20 | 0 | 0 |" in text
    assert "(c) saturation 3 dev x 1" in text
    assert "| OK verdicts = ledger redemptions | equal | equal | met |" in text
