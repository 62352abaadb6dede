# Command line: `python -m tools.loadgen all|single|open|saturate|workers [options]` (`make bench` runs `all`,
# `make bench-workers` runs `workers`: PostgreSQL, 1 and 2 gateway workers side by side).
from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import shlex
import signal
import sys
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console

from gateway.services.local_access import read_local_token
from tools.loadgen import workers
from tools.loadgen.bench import System, external_system, probe, run_scenario, spawned_system
from tools.loadgen.client import DeviceError
from tools.loadgen.modes import RunResult, Target, run_open, run_saturate, run_single
from tools.loadgen.procs import BenchError, env_pairs
from tools.loadgen.profile import find_py_spy, render, summarise
from tools.loadgen.report import correctness_checks, machine_info, markdown, print_results
from tools.loadgen.stats import durable_commit_latency

# Default upper bound for one whole invocation: whatever hangs, the process ends and stops its broker and gateway.
HARD_TIMEOUT_S = 600


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tools.loadgen",
        description="MQTT load generator for the Hexiao gateway (loopback only, bounded in count and time).",
    )
    sub = p.add_subparsers(dest="mode", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        g = sp.add_argument_group("system under test (default: start our own Mosquitto and gateway)")
        g.add_argument("--mqtt", metavar="URL", help="use a running broker, e.g. mqtt://127.0.0.1:1884")
        g.add_argument("--http", metavar="URL", help="its gateway's REST API, e.g. http://127.0.0.1:8000")
        g.add_argument("--code", action="append", default=[], help="scan these existing order codes")
        g.add_argument(
            "--token",
            default=os.environ.get("HEXIAO_TOKEN")
            or read_local_token(Path(os.environ.get("VAR_DIR", "var"))),
            help="API token (Bearer) for --http; default env HEXIAO_TOKEN, else the gateway's local token "
            "in $VAR_DIR/local-token (./var)",
        )
        g.add_argument("--gateway-pid", type=int, help="record this gateway process's CPU")
        g.add_argument("--broker-pid", type=int, help="record this broker process's CPU")
        g.add_argument(
            "--gateway-env", action="append", default=[], metavar="K=V", help="extra env for our gateway"
        )
        g.add_argument(
            "--keep-workdir", action="store_true", help="keep the temporary broker/gateway directory"
        )
        sp.add_argument(
            "--orders", type=int, default=50, help="orders created per run; scans cycle through them"
        )
        sp.add_argument("--markdown", type=Path, metavar="FILE", help="also write the figures as markdown")
        sp.add_argument(
            "--repeat", type=int, default=1, help="run the scenario(s) this many times, interleaved"
        )
        sp.add_argument(
            "--profile",
            type=Path,
            metavar="DIR",
            help="sample the gateway with py-spy during each run; stacks and a summary go to DIR",
        )
        sp.add_argument(
            "--hard-timeout", type=int, default=HARD_TIMEOUT_S, help="end everything after this many seconds"
        )

    def single_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--scans", type=int, default=1000, help="(a) sequential scans")

    def open_opts(sp: argparse.ArgumentParser, prefix: str = "") -> None:
        sp.add_argument(f"--{prefix}rate", type=float, default=500.0, help="(b) scans per second")
        sp.add_argument(f"--{prefix}seconds", type=float, default=20.0, help="(b) how long")
        sp.add_argument(f"--{prefix}devices", type=int, default=50, help="(b) devices sharing the rate")
        sp.add_argument("--arrivals", choices=("poisson", "uniform"), default="poisson")

    def sat_opts(sp: argparse.ArgumentParser, prefix: str = "") -> None:
        sp.add_argument(f"--{prefix}devices", type=int, default=200, help="(c) devices")
        sp.add_argument("--window", type=int, default=1, help="(c) scans in flight per device")
        sp.add_argument(f"--{prefix}seconds", type=float, default=20.0, help="(c) how long")
        sp.add_argument("--warmup", type=float, default=2.0, help="(c) seconds not counted in throughput")

    sp = sub.add_parser("single", help="(a) one scan in flight")
    common(sp)
    single_opts(sp)
    sp = sub.add_parser("open", help="(b) open loop at a fixed rate")
    common(sp)
    open_opts(sp)
    sp = sub.add_parser("saturate", help="(c) every device keeps scans in flight")
    common(sp)
    sat_opts(sp)
    sp = sub.add_parser(
        "all", help="(a), (b) and (c) against our own broker + gateway: what `make bench` runs"
    )
    common(sp)
    single_opts(sp)
    open_opts(sp, "open-")
    sat_opts(sp, "sat-")
    workers.add_parser(sub)
    return p


@contextlib.contextmanager
def _system(args: argparse.Namespace, console: Console) -> Iterator[System]:
    if args.mqtt:
        pids = {}
        if args.gateway_pid:
            pids["gateway"] = args.gateway_pid
        if args.broker_pid:
            pids["broker"] = args.broker_pid
        yield external_system(args.mqtt, args.http, pids, args.token)
        return
    console.print("[dim]starting Mosquitto and the gateway on free loopback ports…[/dim]")
    with spawned_system(env_pairs(args.gateway_env), keep_workdir=args.keep_workdir) as system:
        if system.workdir is not None:
            console.print(f"[dim]work dir {system.workdir} (gateway pid {system.pids.get('gateway')})[/dim]")
        yield system


def _commit_probe(where: str, console: Console, info: dict[str, str], when: str) -> None:
    lat = durable_commit_latency(where)
    if lat is not None:
        text = f"p50 {lat.p50:.2f} ms, p99 {lat.p99:.2f} ms"
        info[f"one durable SQLite commit on this disk, {when}"] = text
        console.print(f"[dim]one durable SQLite commit (WAL, synchronous=FULL) {when}: {text}[/dim]")


def _run(args: argparse.Namespace, console: Console, info: dict[str, str]) -> list[RunResult]:
    results: list[RunResult] = []
    codes: list[str] = list(args.code)
    with _system(args, console) as system:
        # The floor under every round trip: the verdict waits for such a commit (disk noise shows here).
        disk = str(system.workdir) if system.workdir is not None else tempfile.gettempdir()
        _commit_probe(disk, console, info, "before")
        took = asyncio.run(probe(system.mqtt_host, system.mqtt_port))
        console.print(f"[dim]gateway answered a probe scan after {took:.2f} s[/dim]")

        def go(name: str, scenario: Callable[[Target], Coroutine[Any, Any, RunResult]]) -> None:
            console.print(f"[bold]running {name}…[/bold]")
            prof = None if args.profile is None else args.profile / f"{len(results) + 1:02d}-{name}.txt"
            res = run_scenario(system, name, scenario, args.orders, codes, profile_to=prof)
            results.append(res)
            if prof is not None and prof.exists():
                summary = render(summarise(prof.read_text()))
                prof.with_suffix(".summary.txt").write_text(summary + "\n")
                console.print(
                    f"[dim]gateway profile of {res.label}: {prof.with_suffix('.summary.txt')}[/dim]"
                )

        for _ in range(max(1, args.repeat)):
            m = args.mode
            if m in ("single", "all"):
                go("single", functools.partial(run_single, scans=args.scans))
            if m == "open":
                go(
                    "open",
                    functools.partial(
                        run_open,
                        rate=args.rate,
                        seconds=args.seconds,
                        n_devices=args.devices,
                        arrivals=args.arrivals,
                    ),
                )
            if m == "all":
                go(
                    "open",
                    functools.partial(
                        run_open,
                        rate=args.open_rate,
                        seconds=args.open_seconds,
                        n_devices=args.open_devices,
                        arrivals=args.arrivals,
                    ),
                )
            if m == "saturate":
                go(
                    "saturate",
                    functools.partial(
                        run_saturate,
                        n_devices=args.devices,
                        window=args.window,
                        seconds=args.seconds,
                        warmup=args.warmup,
                    ),
                )
            if m == "all":
                go(
                    "saturate",
                    functools.partial(
                        run_saturate,
                        n_devices=args.sat_devices,
                        window=args.window,
                        seconds=args.sat_seconds,
                        warmup=args.warmup,
                    ),
                )
        _commit_probe(disk, console, info, "after")
    return results


def _alarm(_sig: int, _frame: FrameType | None) -> None:
    # SystemExit unwinds through the context managers, so our broker and gateway are stopped too.
    raise SystemExit("load generator hit its hard timeout (--hard-timeout)")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.mode == "workers":
        return _workers(args, argv if argv is not None else sys.argv[1:])
    if args.profile is not None and find_py_spy() is None:
        print("--profile needs py-spy: .venv/bin/pip install py-spy==0.4.3", file=sys.stderr)
        return 2
    console = Console()
    if not console.is_terminal:
        console = Console(width=250)  # piped or logged: keep the table on one line per run
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(args.hard_timeout)
    info = machine_info()
    try:
        results = _run(args, console, info)
    except (BenchError, DeviceError) as e:
        console.print(f"[red]benchmark failed:[/red] {e}")
        return 2
    finally:
        signal.alarm(0)
    print_results(console, results)
    if args.markdown:
        cmd = "python -m tools.loadgen " + shlex.join(argv if argv is not None else sys.argv[1:])
        args.markdown.write_text(markdown(results, info, cmd))
        console.print(f"[dim]wrote {args.markdown}[/dim]")
    # Exit status reflects correctness only (lost/duplicate/ledger), never speed.
    return 0 if all(c.met for c in correctness_checks(results)) else 1


def _workers(args: argparse.Namespace, argv: list[str]) -> int:
    console = Console()
    if not console.is_terminal:
        console = Console(width=250)
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(args.hard_timeout)
    try:
        return workers.run(args, console, argv)
    except (BenchError, DeviceError) as e:
        console.print(f"[red]benchmark failed:[/red] {e}")
        return 2
    finally:
        signal.alarm(0)


if __name__ == "__main__":
    sys.exit(main())
