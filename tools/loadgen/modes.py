# The three load shapes: sequential (1 in flight), open loop at a fixed rate, and closed-loop saturation.
#
# Every run is bounded twice: by a scan count and by time (a hard timeout around the whole run), and ends
# by itself. The outcome is a RunResult: throughput, round trips, and the proof of no loss/duplication.
from __future__ import annotations

import asyncio
import contextlib
import random
import string
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from tools.loadgen.client import Device, connect_devices, keepalive_loop
from tools.loadgen.stats import CpuUse, Latency, PidGroup, Tally, cpu_snapshot


@dataclass(frozen=True, slots=True)
class Target:
    """Where the load goes: the broker, the order codes to scan, and the processes whose CPU we record."""

    host: str
    port: int
    codes: Sequence[str]
    pids: dict[str, int] = field(default_factory=dict)
    groups: dict[str, PidGroup] = field(default_factory=dict)  # CPU summed over several processes


@dataclass(slots=True)
class RunResult:
    mode: str
    label: str
    devices: int
    window_s: float  # the time the throughput figure is measured over
    sent: int
    answered: int
    ok: int
    lost: int
    duplicates: int
    strays: int
    misrouted: int
    bad_verdicts: int
    unacked_publishes: int
    latency: Latency | None
    throughput: float  # verdicts per second
    ok_per_s: float
    reasons: dict[str, int]
    cpu: CpuUse
    lost_sample: list[str] = field(default_factory=list)
    sched_lag_max_ms: float | None = None
    ledger_ok: int | None = None  # units the ledger shows as used on this run's orders
    ledger_rows_ok: int | None = None  # OK redemption records the ledger wrote during this run
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """No lost, duplicate, stray, misrouted or unreadable verdicts, every scan PUBACKed, ledger agrees."""
        return (
            self.lost == 0
            and self.duplicates == 0
            and self.strays == 0
            and self.misrouted == 0
            and self.bad_verdicts == 0
            and self.unacked_publishes == 0
            and (self.ledger_ok is None or self.ledger_ok == self.ok)
            and (self.ledger_rows_ok is None or self.ledger_rows_ok == self.ok)
        )


_B36 = string.digits + string.ascii_lowercase


def run_tag() -> str:
    """Six base-36 characters from the clock (ms): makes device and scan ids unique across runs."""
    n = int(time.time() * 1000) % 36**6
    out = ""
    for _ in range(6):
        n, r = divmod(n, 36)
        out = _B36[r] + out
    return out


class _Ids:
    """Scan ids unique within a run and, thanks to the tag, across runs: `<tag><n hex>` (≤ 24 chars)."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.n = 0

    def next(self) -> str:
        self.n += 1
        return f"{self.tag}{self.n:x}"


async def _drain(tally: Tally, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while tally.outstanding and time.perf_counter() < deadline:
        await asyncio.sleep(0.005)


async def _wait_pubacks(devices: Sequence[Device], timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while any(d.unacked for d in devices) and time.perf_counter() < deadline:
        await asyncio.sleep(0.005)


async def run_load(
    mode: str,
    label: str,
    target: Target,
    n_devices: int,
    drive: Callable[[list[Device], Tally, _Ids], Awaitable[tuple[float, float]]],
    drain_s: float,
    hard_timeout: float,
    keepalive: int = 60,
    parallel: int = 50,
) -> RunResult:
    """Connect the devices, let `drive` send scans, drain outstanding verdicts, and summarise.

    `drive` returns the (start, end) perf_counter window its throughput is measured over.
    """
    tag = run_tag()
    tally = Tally()
    ids = _Ids(tag)
    device_ids = [f"lg{mode[0]}{tag}-{i:04d}" for i in range(n_devices)]
    async with asyncio.timeout(hard_timeout):
        devices = await connect_devices(
            target.host, target.port, device_ids, tally, keepalive=keepalive, parallel=parallel
        )
        pinger = asyncio.create_task(keepalive_loop(devices, keepalive))
        try:
            before = cpu_snapshot(target.pids, target.groups)
            win_start, win_end = await drive(devices, tally, ids)
            await _drain(tally, drain_s)
            after = cpu_snapshot(target.pids, target.groups)
            await _wait_pubacks(devices, 2.0)
        finally:
            pinger.cancel()
            for d in devices:
                d.disconnect()
    window = max(win_end - win_start, 1e-9)
    answered_in_window = tally.completed_between(win_start, win_end)
    ok_ratio = tally.ok / len(tally.answered) if tally.answered else 0.0
    notes = [f"{d.id}: {d.error}" for d in devices if d.error][:5]
    return RunResult(
        mode=mode,
        label=label,
        devices=n_devices,
        window_s=window,
        sent=len(tally.sent),
        answered=len(tally.answered),
        ok=tally.ok,
        lost=tally.lost,
        duplicates=tally.duplicates,
        strays=tally.strays,
        misrouted=tally.misrouted,
        bad_verdicts=tally.bad_verdicts,
        unacked_publishes=sum(d.unacked for d in devices),
        latency=Latency.of(tally.latencies),
        throughput=answered_in_window / window,
        ok_per_s=answered_in_window * ok_ratio / window,
        reasons=dict(tally.reasons),
        cpu=CpuUse.between(before, after),
        lost_sample=tally.lost_sids(),
        notes=notes,
    )


async def run_single(target: Target, scans: int = 1000, per_scan_timeout: float = 5.0) -> RunResult:
    """(a) One device, one scan in flight: send, wait for its verdict, send the next."""

    async def drive(devices: list[Device], tally: Tally, ids: _Ids) -> tuple[float, float]:
        dev = devices[0]
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[str] | None = None

        def answered(_d: Device, sid: str) -> None:
            if waiter is not None and not waiter.done():
                waiter.set_result(sid)

        dev.on_answer = answered
        start = time.perf_counter()
        for i in range(scans):
            waiter = loop.create_future()
            dev.send_scan(ids.next(), target.codes[i % len(target.codes)])
            # A scan not answered in time counts as lost unless its verdict turns up during the drain.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(waiter, per_scan_timeout)
        return start, time.perf_counter()

    return await run_load(
        "single",
        f"(a) 1 in flight, {scans} scans",
        target,
        1,
        drive,
        drain_s=per_scan_timeout,
        hard_timeout=scans * per_scan_timeout + 60,
    )


async def run_open(
    target: Target,
    rate: float = 500.0,
    seconds: float = 20.0,
    n_devices: int = 50,
    arrivals: str = "poisson",
    max_scans: int = 200_000,
    drain_s: float = 10.0,
    seed: int | None = None,
) -> RunResult:
    """(b) Open loop: scans at a fixed mean rate regardless of answers, spread round-robin over devices.

    Arrivals are Poisson (exponential gaps) or uniform (equal gaps). When the event loop wakes up late,
    every scan already due is sent at once and the lateness is reported (sched_lag_max_ms), so a slow
    generator shows up instead of silently lowering the rate.
    """
    if arrivals not in ("poisson", "uniform"):
        raise ValueError(f"arrivals must be poisson or uniform, not {arrivals!r}")
    if rate <= 0 or seconds <= 0:
        raise ValueError("rate and seconds must be positive")
    total = min(int(rate * seconds), max_scans)
    rng = random.Random(seed)
    lag_max = 0.0

    async def drive(devices: list[Device], tally: Tally, ids: _Ids) -> tuple[float, float]:
        nonlocal lag_max
        start = time.perf_counter()
        due = start
        for i in range(total):
            due += rng.expovariate(rate) if arrivals == "poisson" else 1.0 / rate
            now = time.perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
                now = time.perf_counter()
            lag_max = max(lag_max, now - due)
            devices[i % len(devices)].send_scan(ids.next(), target.codes[i % len(target.codes)])
        end = time.perf_counter()
        # Verdicts still in flight at the end belong to this load: measure up to the last answer.
        await _drain(tally, drain_s)
        last = tally.arrivals[-1] if tally.arrivals else end
        return start, max(end, last) + 1e-6

    res = await run_load(
        "open",
        f"(b) open {rate:g}/s {arrivals}, {seconds:g} s, {n_devices} dev",
        target,
        n_devices,
        drive,
        drain_s=drain_s,
        hard_timeout=seconds * 3 + drain_s + 60,
    )
    res.sched_lag_max_ms = lag_max * 1000
    return res


async def run_saturate(
    target: Target,
    n_devices: int = 200,
    window: int = 1,
    seconds: float = 20.0,
    warmup: float = 2.0,
    max_scans: int = 500_000,
    drain_s: float = 10.0,
) -> RunResult:
    """(c) Closed loop: every device keeps `window` scans in flight for `seconds`; the next scan of a device
    goes out the moment one of its verdicts arrives. Throughput is counted after a warm-up."""
    if window < 1 or n_devices < 1:
        raise ValueError("devices and window must be at least 1")
    sending = True
    count = 0

    async def drive(devices: list[Device], tally: Tally, ids: _Ids) -> tuple[float, float]:
        nonlocal sending
        codes = target.codes
        n_codes = len(codes)
        budget_spent = asyncio.Event()

        def send(dev: Device) -> None:
            nonlocal count
            n = count
            count = n + 1
            dev.send_scan(ids.next(), codes[n % n_codes])
            if count >= max_scans:
                budget_spent.set()

        def answered(dev: Device, _sid: str) -> None:
            if sending and count < max_scans:
                send(dev)

        start = time.perf_counter()
        for dev in devices:
            dev.on_answer = answered
        for _ in range(window):
            for dev in devices:
                if count < max_scans:
                    send(dev)
        # Ends after `seconds`, or earlier once max_scans have been sent (a count-bounded run).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(budget_spent.wait(), seconds)
        sending = False
        end = time.perf_counter()
        return min(start + warmup, end - 1e-3), end

    return await run_load(
        "saturate",
        f"(c) saturation {n_devices} dev x {window}, {seconds:g} s",
        target,
        n_devices,
        drive,
        drain_s=drain_s,
        hard_timeout=seconds + drain_s + 90,
    )
