# Deployment-shaped loads: a large mostly idle fleet ("fleet") and a stadium opening ("stadium").
#
# Both reuse the load generator's devices and tally (modes.run_load), so the same proof holds: every scan
# answered exactly once, on its own device's topic. They add what a deployment question needs: resident
# memory of the broker and gateway, connect time of a whole fleet, turnstile queues in people.
from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from dataclasses import dataclass, field

from tools.loadgen.arrivals import STADIUM_KNOTS, Compression, Curve, arrival_times, peak_rate
from tools.loadgen.client import Device
from tools.loadgen.modes import RunResult, Target, _Ids, run_load
from tools.loadgen.stats import Latency, Tally, process_rss_bytes

# What a device reports in its heartbeat (docs/protocol.md "status"); the figures are a healthy idle device's.
STATUS = b'{"v":1,"state":"online","fw":"0.1.0","board":"loadgen","rssi":-58,"heap":61440,"outbox":0,"up":60}'


def rss_of(pids: dict[str, int]) -> dict[str, int | None]:
    return {name: process_rss_bytes(pid) for name, pid in pids.items()}


@dataclass(slots=True)
class FleetResult:
    run: RunResult
    connect_s: float  # from the first CONNECT to the last SUBACK of the whole fleet
    rss_before: dict[str, int | None]  # broker and gateway before the fleet connected
    rss_connected: dict[str, int | None]  # right after
    rss_end: dict[str, int | None]  # at the end of the idle window
    pings: int
    pongs: int
    dropped: int  # devices whose connection closed during the window
    idle_s: float
    statuses: int = 0  # retained status heartbeats published


async def run_fleet(
    target: Target,
    n_devices: int = 10_000,
    scanners: int = 100,
    scan_rate: float = 20.0,
    seconds: float = 60.0,
    keepalive: int = 30,
    parallel: int = 200,
    heartbeat_s: float = 0.0,
    seed: int | None = None,
) -> FleetResult:
    """n_devices real MQTT connections held for `seconds` with keepalive traffic (PINGREQ every
    keepalive/2 when idle, like the firmware); `scanners` of them scan, Poisson at `scan_rate` in total.
    With `heartbeat_s`, every device also publishes its retained status (like the firmware: at connect,
    then every heartbeat), the first at a random moment of the first period so the fleet is spread."""
    if not 0 < scanners <= n_devices:
        raise ValueError("scanners must be within 1..devices")
    rng = random.Random(seed)
    rss_before = rss_of(target.pids)
    called = time.perf_counter()
    seen: dict[str, object] = {}
    counts = {"statuses": 0}

    async def drive(devices: list[Device], tally: Tally, ids: _Ids) -> tuple[float, float]:
        seen["connect_s"] = time.perf_counter() - called
        seen["rss_connected"] = rss_of(target.pids)
        seen["devices"] = devices
        print(f"  {len(devices):,} devices connected in {seen['connect_s']:.1f} s; idle for {seconds:g} s…")
        start = time.perf_counter()
        due = start
        end = start + seconds
        next_note = start + 10
        i = 0
        beats: list[asyncio.TimerHandle] = []
        if heartbeat_s > 0:
            loop = asyncio.get_running_loop()

            def beat(d: Device) -> None:
                if d.connected and time.perf_counter() < end:
                    d.send_status(STATUS)
                    counts["statuses"] += 1
                    beats.append(loop.call_later(heartbeat_s, beat, d))

            for d in devices:
                beats.append(loop.call_later(rng.uniform(0, heartbeat_s), beat, d))
        while True:
            due += rng.expovariate(scan_rate)
            if due >= end:
                break
            now = time.perf_counter()
            if due > now:
                await asyncio.sleep(due - now)
            devices[rng.randrange(scanners)].send_scan(ids.next(), target.codes[i % len(target.codes)])
            i += 1
            if time.perf_counter() >= next_note:
                next_note += 10
                alive = sum(d.connected for d in devices)
                pongs = sum(d.pongs for d in devices)
                print(
                    f"  t+{time.perf_counter() - start:4.0f} s: {alive:,} connected, {i} scans, {pongs:,} PINGRESP"
                )
        now = time.perf_counter()
        if end > now:
            await asyncio.sleep(end - now)
        seen["rss_end"] = rss_of(target.pids)
        for h in beats:
            h.cancel()
        return start, time.perf_counter()

    run = await run_load(
        "fleet",
        f"fleet {n_devices:,} dev, {scanners} scanning {scan_rate:g}/s, {seconds:g} s",
        target,
        n_devices,
        drive,
        drain_s=10.0,
        hard_timeout=seconds + n_devices / 50 + 120,
        keepalive=keepalive,
        parallel=parallel,
    )
    devs = seen["devices"]
    assert isinstance(devs, list)
    return FleetResult(
        run=run,
        connect_s=float(seen["connect_s"]),  # type: ignore[arg-type]
        rss_before=rss_before,
        rss_connected=seen["rss_connected"],  # type: ignore[arg-type]
        rss_end=seen["rss_end"],  # type: ignore[arg-type]
        pings=sum(d.pings_sent for d in devs),
        pongs=sum(d.pongs for d in devs),
        dropped=sum(1 for d in devs if d.error),
        idle_s=seconds,
        statuses=counts["statuses"],
    )


@dataclass(slots=True)
class StadiumResult:
    run: RunResult
    people: int
    rescans: int
    compression: Compression
    peak_real_per_s: float
    max_queue: int  # the most people waiting at one turnstile (not counting the one at the reader)
    max_waiting: int  # the most people waiting at all turnstiles together
    max_in_flight: int  # the most scans sent and not yet answered (what the gateway held)
    time_in_system_real: Latency | None  # arrival → through the turnstile, in real (uncompressed) seconds
    per_minute: list[int] = field(default_factory=list)  # verdicts per real minute


async def run_stadium(
    target: Target,
    people: int = 50_000,
    turnstiles: int = 100,
    real_minutes: float = 60.0,
    factor: float = 15.0,
    pass_s: float = 3.0,
    rescan_share: float = 0.005,
    seed: int | None = 2026,
) -> StadiumResult:
    """`people` arrive over `real_minutes` along the stadium curve, played `factor` times faster; each joins
    the shorter of two random turnstiles' queues, scans its own ticket (one order of 1 unit each) when at
    the reader, and walks through `pass_s` (real) after an OK. A few scan again at once (ALREADY_USED)."""
    if len(target.codes) < people:
        raise ValueError("one ticket (order code) per person is needed")
    comp = Compression(real_minutes * 60, factor)
    curve = Curve.of(STADIUM_KNOTS)
    times = arrival_times(curve, people, comp.replay_s, seed)
    rng = random.Random(seed)
    rescanners = set(rng.sample(range(people), int(people * rescan_share)))
    pass_replay = comp.duration(pass_s)
    arrived_at: dict[int, float] = {}
    through: list[float] = []
    stats = {"max_queue": 0, "max_waiting": 0, "max_in_flight": 0, "rescans": 0}
    minute_counts: list[int] = [0] * (int(real_minutes) + 1)

    async def drive(devices: list[Device], tally: Tally, ids: _Ids) -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        queues: list[deque[int]] = [deque() for _ in devices]
        at_reader: list[int | None] = [None] * len(devices)
        scanned_twice: set[int] = set()
        sid_person: dict[str, int] = {}
        index = {d.id: k for k, d in enumerate(devices)}
        waiting = 0
        start = time.perf_counter()

        def scan(k: int, person: int) -> None:
            sid = ids.next()
            sid_person[sid] = person
            devices[k].send_scan(sid, target.codes[person])
            stats["max_in_flight"] = max(stats["max_in_flight"], tally.outstanding)

        def next_person(k: int) -> None:
            nonlocal waiting
            at_reader[k] = None
            if queues[k]:
                person = queues[k].popleft()
                waiting -= 1
                at_reader[k] = person
                scan(k, person)

        def answered(dev: Device, sid: str) -> None:
            k = index[dev.id]
            person = sid_person.pop(sid)
            now = time.perf_counter()
            minute = min(len(minute_counts) - 1, int(comp.to_real(now - start) / 60))
            minute_counts[minute] += 1
            if person in rescanners and person not in scanned_twice:
                scanned_twice.add(person)  # "did it beep?" – the same ticket again, at once
                stats["rescans"] += 1
                scan(k, person)
                return
            through.append(comp.to_real(now - start - arrived_at[person]) + pass_s)
            loop.call_later(pass_replay, next_person, k)

        for d in devices:
            d.on_answer = answered
        next_note = start + 10
        for person, t in enumerate(times):
            now = time.perf_counter()
            if start + t > now:
                await asyncio.sleep(start + t - now)
            arrived_at[person] = time.perf_counter() - start
            a, b = rng.randrange(len(devices)), rng.randrange(len(devices))
            k = (
                a
                if len(queues[a]) + (at_reader[a] is not None) <= len(queues[b]) + (at_reader[b] is not None)
                else b
            )
            if at_reader[k] is None and not queues[k]:
                at_reader[k] = person
                scan(k, person)
            else:
                queues[k].append(person)
                waiting += 1
                stats["max_queue"] = max(stats["max_queue"], len(queues[k]))
                stats["max_waiting"] = max(stats["max_waiting"], waiting)
            if time.perf_counter() >= next_note:
                next_note += 10
                real_min = comp.to_real(time.perf_counter() - start) / 60
                print(
                    f"  real minute {real_min:4.1f}: {person + 1:,} arrived, {len(tally.answered):,} verdicts, "
                    f"{waiting} waiting, {tally.outstanding} in flight"
                )
        # Everyone has arrived; let the queues empty (bounded: the run's hard timeout).
        while waiting or any(r is not None for r in at_reader) or tally.outstanding:
            await asyncio.sleep(0.05)
            if time.perf_counter() - start > comp.replay_s * 2 + 120:
                break
        return start, time.perf_counter()

    run = await run_load(
        "stadium",
        f"stadium {people:,} people, {turnstiles} turnstiles, {real_minutes:g} min ÷ {factor:g}",
        target,
        turnstiles,
        drive,
        drain_s=10.0,
        hard_timeout=comp.replay_s * 2 + 300,
        keepalive=30,
    )
    return StadiumResult(
        run=run,
        people=people,
        rescans=stats["rescans"],
        compression=comp,
        peak_real_per_s=peak_rate(curve, people, comp.real_s),
        max_queue=stats["max_queue"],
        max_waiting=stats["max_waiting"],
        max_in_flight=stats["max_in_flight"],
        time_in_system_real=Latency.of(through),
        per_minute=minute_counts,
    )
