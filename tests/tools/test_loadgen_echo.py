# The load generator against a real Mosquitto and a stand-in responder: it counts exactly, and it catches faults.
from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.broker import Mosquitto
from tests.tools.echo_responder import EchoResponder
from tools.loadgen.modes import RunResult, Target, run_open, run_saturate, run_single


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(workdir=tmp_path / "broker") as b:
        yield b


def _target(b: Mosquitto) -> Target:
    assert b.proc is not None
    return Target(b.host, b.port, ["LG-A", "LG-B"], {"broker": b.proc.pid})


def _assert_clean(r: RunResult, sent: int | None = None) -> None:
    assert r.sent > 0
    if sent is not None:
        assert r.sent == sent
    assert (r.answered, r.ok, r.lost, r.duplicates, r.strays, r.misrouted, r.bad_verdicts) == (
        r.sent,
        r.sent,
        0,
        0,
        0,
        0,
        0,
    )
    assert r.unacked_publishes == 0  # the broker acknowledged every QoS 1 scan
    assert r.latency is not None and r.latency.n == r.sent
    assert r.reasons == {"OK": r.sent}
    assert r.clean


def test_every_mode_gets_exactly_one_verdict_per_scan(broker: Mosquitto) -> None:
    t = _target(broker)
    with EchoResponder(broker.host, broker.port) as echo:
        single = asyncio.run(run_single(t, scans=50))
        opened = asyncio.run(run_open(t, rate=200, seconds=1, n_devices=5, drain_s=10, seed=1))
        sat = asyncio.run(run_saturate(t, n_devices=10, window=2, seconds=1, warmup=0.2, drain_s=10))
    _assert_clean(single, 50)
    _assert_clean(opened, 200)
    _assert_clean(sat)
    assert sat.sent >= 20  # 10 devices x 2 in flight at least
    assert echo.seen == single.sent + opened.sent + sat.sent
    assert opened.cpu.seconds["broker"] is not None


def test_lost_and_duplicate_verdicts_are_detected_exactly(broker: Mosquitto) -> None:
    t = _target(broker)
    with EchoResponder(broker.host, broker.port, drop_every=7, duplicate_every=5) as echo:
        r = asyncio.run(run_open(t, rate=300, seconds=1, n_devices=4, drain_s=3, seed=2))
    assert r.sent == 300 == echo.seen
    assert echo.dropped == 300 // 7 and r.lost == echo.dropped
    # A scan whose answer was dropped cannot have its duplicate sent, so count what the responder really sent.
    assert r.duplicates == echo.duplicated > 0
    assert len(r.lost_sample) > 0
    assert not r.clean
