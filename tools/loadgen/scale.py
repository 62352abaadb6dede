# Command line for the deployment-shaped loads: `python -m tools.loadgen.scale fleet|stadium` (make bench-fleet,
# make bench-stadium). Starts its own Mosquitto and gateway, prints progress, stops by itself.
from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import signal
import sys
import time
from types import FrameType

from tools.loadgen.bench import BENCH_GATEWAY_ENV, System, probe, spawned_system
from tools.loadgen.client import DeviceError
from tools.loadgen.modes import RunResult, Target, run_tag
from tools.loadgen.procs import BenchError
from tools.loadgen.venues import FleetResult, StadiumResult, run_fleet, run_stadium

MB = 1024 * 1024


def raise_nofile(want: int) -> tuple[int, int]:
    """Lift this process's open-file limit to `want` (root may raise the hard limit too); children such as
    the broker inherit it. Returns the (soft, hard) limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft, hard
    new_hard = max(hard, want) if os.geteuid() == 0 else hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, new_hard), new_hard))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _mb(v: int | None) -> str:
    return "–" if v is None else f"{v / MB:.1f} MB"


def _cpu_line(r: RunResult) -> str:
    parts = []
    for name in ("gateway", "broker", "generator"):
        cores = r.cpu.cores(name)
        if cores is not None:
            parts.append(f"{name} {cores:.3f} cores")
    other = r.cpu.other_load()
    if other is not None:
        parts.append(f"other load {other:.2f} cores")
    return ", ".join(parts)


def _verdict_lines(r: RunResult) -> list[str]:
    lat = r.latency
    out = [
        f"scans {r.sent:,}, verdicts {r.answered:,} (OK {r.ok:,}), lost {r.lost}, duplicates {r.duplicates}, "
        f"stray/misrouted/unreadable {r.strays + r.misrouted + r.bad_verdicts}, without PUBACK {r.unacked_publishes}",
        "reasons " + ", ".join(f"{k}={v}" for k, v in sorted(r.reasons.items())),
    ]
    if lat is not None:
        out.append(
            f"verdict round trip p50 {lat.p50:.2f} ms, p90 {lat.p90:.2f} ms, p99 {lat.p99:.2f} ms, max {lat.max:.1f} ms"
        )
    out.append(f"ledger: OK redemption records written during the run {r.ledger_rows_ok}")
    return out


def report_fleet(f: FleetResult) -> tuple[list[str], bool]:
    r = f.run
    lines = [
        f"fleet: {r.devices:,} connections held {f.idle_s:g} s",
        f"connect time for the whole fleet {f.connect_s:.1f} s ({r.devices / f.connect_s:,.0f} connections/s)",
        f"keepalive: {f.pings:,} PINGREQ sent, {f.pongs:,} PINGRESP; connections dropped {f.dropped}",
        f"status heartbeats published (retained, QoS 1) {f.statuses:,} ({f.statuses / f.idle_s:,.0f}/s)",
    ]
    for name in ("broker", "gateway"):
        lines.append(
            f"{name} RSS: before {_mb(f.rss_before.get(name))}, fleet connected {_mb(f.rss_connected.get(name))}, "
            f"end {_mb(f.rss_end.get(name))}"
        )
    b0, b1 = f.rss_before.get("broker"), f.rss_connected.get("broker")
    if b0 is not None and b1 is not None:
        lines.append(f"broker memory per connection ≈ {(b1 - b0) / r.devices / 1024:.1f} kB")
    lines.append("CPU over the idle window: " + _cpu_line(r))
    lines += _verdict_lines(r)
    ok = r.clean and f.dropped == 0 and f.pongs > 0
    return lines, ok


def report_stadium(s: StadiumResult) -> tuple[list[str], bool]:
    r = s.run
    c = s.compression
    lines = [
        f"stadium: {s.people:,} people over {c.real_s / 60:g} real minutes, {r.devices} turnstiles, "
        f"time compressed ×{c.factor:g} (played in {c.replay_s:.0f} s)",
        f"real peak arrival rate {s.peak_real_per_s:.1f} people/s, played at {c.rate(s.peak_real_per_s):.0f} scans/s",
        f"throughput over the replay {r.throughput:,.0f} verdicts/s (= {r.throughput / c.factor:.1f}/s real)",
        f"max queue at one turnstile {s.max_queue} people, max waiting at all turnstiles {s.max_waiting}, "
        f"max scans in flight at the gateway {s.max_in_flight}",
        f"rescans of a used ticket {s.rescans} (answered {r.reasons.get('ALREADY_USED', 0)} ALREADY_USED)",
    ]
    t = s.time_in_system_real
    if t is not None:
        lines.append(
            f"time from arrival to through the turnstile (real): p50 {t.p50 / 1000:.1f} s, p99 {t.p99 / 1000:.1f} s, "
            f"max {t.max / 1000:.1f} s"
        )
    busiest = max(range(len(s.per_minute)), key=lambda m: s.per_minute[m])
    lines.append(f"busiest real minute {busiest}: {s.per_minute[busiest]:,} verdicts")
    lines.append("CPU over the run: " + _cpu_line(r))
    for name in ("gateway", "broker"):
        per = r.cpu.per_scan_us(name, r.answered)
        if per is not None:
            lines.append(f"{name} CPU per verdict {per:.0f} µs")
    lines += _verdict_lines(r)
    ok = (
        r.clean
        and r.ok == s.people
        and r.ledger_rows_ok == s.people
        and r.reasons.get("ALREADY_USED", 0) == s.rescans
    )
    lines.append(f"0 lost / 0 duplicate / ledger = OK verdicts = people: {'yes' if ok else 'NO'}")
    return lines, ok


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.loadgen.scale", description=__doc__)
    p.add_argument("--hard-timeout", type=int, default=900, help="end everything after this many seconds")
    sub = p.add_subparsers(dest="scenario", required=True)
    f = sub.add_parser("fleet", help="many mostly idle device connections, a few scanning")
    f.add_argument("--devices", type=int, default=10_000)
    f.add_argument("--scanners", type=int, default=100)
    f.add_argument("--scan-rate", type=float, default=20.0, help="scans per second over all scanners")
    f.add_argument("--seconds", type=float, default=60.0, help="how long the fleet stays connected")
    f.add_argument("--keepalive", type=int, default=30, help="MQTT keepalive (the firmware's default: 30 s)")
    f.add_argument(
        "--heartbeat", type=float, default=60.0, help="status heartbeat per device, s (firmware: 60; 0: none)"
    )
    s = sub.add_parser("stadium", help="a stadium opening: people through turnstiles before kick-off")
    s.add_argument("--people", type=int, default=50_000)
    s.add_argument("--turnstiles", type=int, default=100)
    s.add_argument("--minutes", type=float, default=60.0, help="real minutes from gates open to kick-off")
    s.add_argument("--factor", type=float, default=15.0, help="time compression (15: 60 min in 4 min)")
    s.add_argument("--pass-s", type=float, default=3.0, help="real seconds a person takes through the gate")
    return p


def _alarm(_sig: int, _frame: FrameType | None) -> None:
    raise SystemExit("hit the hard timeout (--hard-timeout)")


def _create_tickets(system: System, codes: list[str], units: int) -> None:
    assert system.rest is not None
    t0 = time.perf_counter()
    for i in range(0, len(codes), 5000):
        system.rest.create_orders(codes[i : i + 5000], units, title="Load test tickets")
        print(f"  {min(i + 5000, len(codes)):,} orders created ({time.perf_counter() - t0:.0f} s)")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(args.hard_timeout)
    n_conn = args.devices if args.scenario == "fleet" else args.turnstiles
    soft, hard = raise_nofile(n_conn * 2 + 1024)
    print(f"open-file limit {soft}/{hard}; load average before: {load_avg()}")
    extra = [f"max_connections {n_conn + 100}"]
    try:
        with spawned_system(dict(BENCH_GATEWAY_ENV), broker_extra=extra) as system:
            assert system.rest is not None
            print(f"broker + gateway up (pids {system.pids}); work dir {system.workdir}")
            asyncio.run(probe(system.mqtt_host, system.mqtt_port))
            tag = run_tag()
            since = time.time()
            if args.scenario == "fleet":
                codes = [f"LG-{tag}-fleet-{i:03d}" for i in range(50)]
                _create_tickets(system, codes, 1_000_000)
                target = Target(system.mqtt_host, system.mqtt_port, codes, system.pids)
                print(f"connecting {args.devices:,} devices…")
                fres = asyncio.run(
                    run_fleet(
                        target,
                        args.devices,
                        min(args.scanners, args.devices),
                        args.scan_rate,
                        args.seconds,
                        args.keepalive,
                        heartbeat_s=args.heartbeat,
                    )
                )
                fres.run.ledger_rows_ok = system.rest.ok_redemptions_between(since, time.time() + 1)
                lines, ok = report_fleet(fres)
            else:
                codes = [f"T-{tag}-{i:05d}" for i in range(args.people)]
                print(f"creating {args.people:,} tickets (orders of 1 unit)…")
                _create_tickets(system, codes, 1)
                target = Target(system.mqtt_host, system.mqtt_port, codes, system.pids)
                print("gates open")
                sres = asyncio.run(
                    run_stadium(target, args.people, args.turnstiles, args.minutes, args.factor, args.pass_s)
                )
                sres.run.ledger_rows_ok = system.rest.ok_redemptions_between(since, time.time() + 1)
                # Spot check of the books per ticket: each scanned ticket shows exactly one unit used.
                sample = random.Random(1).sample(codes, min(200, len(codes)))
                used = [system.rest.used(c) for c in sample]
                if any(u != 1 for u in used):
                    sres.run.notes.append(
                        f"tickets with used != 1 in a sample of 200: {sum(u != 1 for u in used)}"
                    )
                    sres.run.ledger_rows_ok = -1
                lines, ok = report_stadium(sres)
    except (BenchError, DeviceError) as e:
        print(f"benchmark failed: {e}", file=sys.stderr)
        return 2
    finally:
        signal.alarm(0)
    print("\n".join(lines))
    print(f"load average after: {load_avg()} (2 cores shared with other jobs: figures are pessimistic)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
