# PostgreSQL with 1 and then 2 gateway workers in one run, side by side: `python -m tools.loadgen workers`.
#
# Each configuration gets a database of its own (hx_bench_<random>, created on the given server and dropped
# afterwards), its own Mosquitto and N `python -m gateway run --no-demo` workers (WORKER_ID w1…wN, the
# same DATABASE_URL and MQTT_URL, their own HTTP_PORT and VAR_DIR: docs/scaling.md), then the same open
# loop and saturation scenarios as `make bench` with the same correctness checks.
from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import shlex
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table

from tools.loadgen.bench import BENCH_GATEWAY_ENV, System, probe, run_scenario
from tools.loadgen.modes import RunResult, run_open, run_saturate
from tools.loadgen.procs import BenchError, GatewayProcess, Rest, TunedMosquitto, env_pairs, require_loopback
from tools.loadgen.report import correctness_checks, machine_info, result_notes
from tools.loadgen.stats import Latency, PidGroup

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
DB_PREFIX = "hx_bench_"

# CPU groups of a configuration, as named in RunResult.cpu: both (all) workers summed, the PostgreSQL
# backends serving the benchmark's database, and the server's own processes (postmaster, WAL writer,
# checkpointer…), which serve every database on that server.
GATEWAY, PG_BACKENDS, PG_SERVER = "gateway", "pg", "pg-server"


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def _ppid(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return int(raw[raw.rindex(b")") + 2 :].split()[1])


class PgServer:
    """The PostgreSQL server the workers share: makes and drops the benchmark's databases, finds its pids."""

    def __init__(self, admin_url: str) -> None:
        url = admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
        if not url.startswith("postgresql://"):
            raise BenchError(f"--server wants postgresql://user@127.0.0.1:5432/postgres, got {admin_url!r}")
        self.url = url
        try:
            info = psycopg.conninfo.conninfo_to_dict(url)
            self.port = int(info.get("port") or 5432)
        except (psycopg.Error, ValueError) as e:
            raise BenchError(f"--server: not a PostgreSQL URL ({e}): {admin_url!r}") from e
        self.host = str(info.get("host") or "127.0.0.1")
        require_loopback(self.host)
        try:
            self.conn = psycopg.connect(url, autocommit=True, connect_timeout=3)
        except psycopg.Error as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise BenchError(
                f"PostgreSQL at {self.host}:{self.port} does not answer ({reason}). Start it "
                "(Debian: pg_ctlcluster 15 main start), or name another server with --server URL"
            ) from e
        self.version = str(self.conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        self.postmaster = self._postmaster()

    def _postmaster(self) -> int | None:
        """The server's main process, when it runs on this machine (the parent of our own backend)."""
        (backend,) = self.conn.execute("SELECT pg_backend_pid()").fetchone() or (0,)
        parent = _ppid(int(backend))
        if parent is None or not _comm(int(backend)).startswith("postgres"):
            return None  # not a process of this machine (another PID namespace, a container)
        return parent if _comm(parent).startswith("postgres") else None

    def close(self) -> None:
        self.conn.close()

    @contextlib.contextmanager
    def database(self) -> Iterator[tuple[str, str]]:
        """A fresh database hx_bench_<random>, dropped afterwards whatever happens: yields (name, URL)."""
        name = DB_PREFIX + uuid.uuid4().hex[:10]
        self.conn.execute(f'CREATE DATABASE "{name}"')
        base = self.url.split("://", 1)[1].rsplit("/", 1)[0]
        try:
            yield name, f"postgresql+psycopg://{base}/{name}"
        finally:
            self.conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _local(self, pids: Sequence[int]) -> list[int]:
        return [p for p in pids if _comm(p).startswith("postgres")]

    def backends(self, dbname: str) -> PidGroup:
        """The server processes working for `dbname` (the workers' connections, its autovacuum)."""

        def pids() -> list[int]:
            if self.postmaster is None:
                return []
            rows = self.conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (dbname,))
            return self._local([int(r[0]) for r in rows])

        return pids

    def server_processes(self) -> PidGroup:
        """The postmaster and its background processes (WAL writer, checkpointer…): shared by all databases."""

        def pids() -> list[int]:
            if self.postmaster is None:
                return []
            rows = self.conn.execute("SELECT pid FROM pg_stat_activity WHERE datname IS NULL")
            return self._local([self.postmaster, *(int(r[0]) for r in rows)])

        return pids

    def commit_latency(self, dbname_url: str, commits: int = 50) -> Latency | None:
        """Round trips of one small committed INSERT (synchronous_commit as configured): the floor under a
        verdict, which waits for its batch's commit; printed because it moves with the machine's disk."""
        url = dbname_url.replace("postgresql+psycopg://", "postgresql://", 1)
        took: list[float] = []
        with psycopg.connect(url, autocommit=True, connect_timeout=3) as c:
            c.execute("CREATE TEMP TABLE hx_probe (id serial PRIMARY KEY, v text)")
            for i in range(commits):
                t0 = time.perf_counter()
                with c.transaction():
                    c.execute("INSERT INTO hx_probe (v) VALUES (%s)", (f"row {i}",))
                took.append(time.perf_counter() - t0)
        return Latency.of(took)


@contextlib.contextmanager
def workers_system(
    n: int,
    db_url: str,
    groups: dict[str, PidGroup],
    gateway_env: dict[str, str] | None = None,
    keep_workdir: bool = False,
) -> Iterator[tuple[System, list[GatewayProcess]]]:
    """Our own Mosquitto and `n` workers w1…wn on one PostgreSQL database; REST calls go to w1 (any worker
    reads the same ledger). `groups` gets the workers' CPU group added as "gateway"."""
    workdir = Path(tempfile.mkdtemp(prefix="hexiao-bench-workers-"))
    broker = TunedMosquitto(workdir=workdir / "broker", port=0, bind="127.0.0.1")
    gws: list[GatewayProcess] = []
    try:
        broker.start()
        for i in range(1, n + 1):
            env = dict(BENCH_GATEWAY_ENV)
            env.update({"DATABASE_URL": db_url, "WORKER_ID": f"w{i}"})
            env.update(gateway_env or {})
            gw = GatewayProcess(broker.url, workdir / f"w{i}", env=env)
            gws.append(gw)
            gw.start()
        gw_pids = [g.pid for g in gws if g.pid is not None]
        pids = {"broker": broker.proc.pid} if broker.proc is not None else {}
        rest = Rest(gws[0].http, token=gws[0].token)
        system = System(
            broker.host,
            broker.port,
            rest,
            pids,
            workdir,
            gws[0],
            exclusive=True,
            groups={GATEWAY: lambda: gw_pids, **groups},
        )
        yield system, gws
    finally:
        for g in gws:
            g.stop()
        broker.stop()
        if not keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)


def _scans_per_worker(gws: Sequence[GatewayProcess]) -> list[int | None]:
    """Scans each worker has taken from the broker so far (its /api/health), to show the split."""
    out: list[int | None] = []
    for g in gws:
        h = Rest(g.http, timeout=5.0).health()
        mqtt = (h or {}).get("mqtt") or {}
        out.append(int(mqtt["scans"]) if isinstance(mqtt.get("scans"), int) else None)
    return out


@dataclass(slots=True)
class Config:
    """One configuration's runs: N workers, their results by scenario, and each worker's share of the scans."""

    workers: int
    database: str
    results: dict[str, RunResult] = field(default_factory=dict)
    split: dict[str, list[int | None]] = field(default_factory=dict)
    commit: Latency | None = None


def run_config(
    pg: PgServer,
    n: int,
    args: argparse.Namespace,
    console: Console,
) -> Config:
    """Bring up N workers on a fresh database, run (b) and (c), read the books, take everything down."""
    with pg.database() as (dbname, db_url):
        cfg = Config(n, dbname)
        groups = {PG_BACKENDS: pg.backends(dbname), PG_SERVER: pg.server_processes()}
        console.print(f"[dim]{n} worker(s) on database {dbname}: starting Mosquitto and the workers…[/dim]")
        with workers_system(n, db_url, groups, env_pairs(args.gateway_env), args.keep_workdir) as (
            system,
            gws,
        ):
            console.print(
                f"[dim]work dir {system.workdir}, worker pids {[g.pid for g in gws]}, "
                f"PostgreSQL server pid {pg.postmaster}[/dim]"
            )
            cfg.commit = pg.commit_latency(db_url)
            took = asyncio.run(probe(system.mqtt_host, system.mqtt_port))
            console.print(f"[dim]the workers answered a probe scan after {took:.2f} s[/dim]")
            scenarios = {
                "open": functools.partial(
                    run_open,
                    rate=args.rate,
                    seconds=args.open_seconds,
                    n_devices=args.open_devices,
                    arrivals=args.arrivals,
                ),
                "saturate": functools.partial(
                    run_saturate,
                    n_devices=args.sat_devices,
                    window=args.window,
                    seconds=args.sat_seconds,
                    warmup=args.warmup,
                ),
            }
            for name, scenario in scenarios.items():
                console.print(f"[bold]{n} worker(s): running {name}…[/bold]")
                before = _scans_per_worker(gws)
                cfg.results[name] = run_scenario(system, name, scenario, args.orders)
                after = _scans_per_worker(gws)
                cfg.split[name] = [
                    None if a is None or b is None else a - b for a, b in zip(after, before, strict=True)
                ]
    return cfg


def _cpu(r: RunResult, name: str) -> str:
    cores = r.cpu.cores(name)
    per = r.cpu.per_scan_us(name, r.answered)
    if cores is None or per is None:
        return "not measured"
    return f"{cores:.2f} cores ({per:,.0f} µs/verdict)"


def _ms(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}"


def _ledger(r: RunResult) -> str:
    rows = "–" if r.ledger_rows_ok is None else f"{r.ledger_rows_ok:,}"
    used = "–" if r.ledger_ok is None else f"{r.ledger_ok:,}"
    return f"{used} units / {rows} records"


def _split(s: list[int | None]) -> str:
    return " / ".join("?" if v is None else f"{v:,}" for v in s)


FIGURES: tuple[tuple[str, Callable[[RunResult], str]], ...] = (
    ("verdicts/s", lambda r: f"{r.throughput:,.0f}"),
    (
        "p50 / p99 ms",
        lambda r: (
            f"{_ms(r.latency.p50 if r.latency else None)} / {_ms(r.latency.p99 if r.latency else None)}"
        ),
    ),
    ("gateway CPU (all workers)", lambda r: _cpu(r, GATEWAY)),
    ("PostgreSQL backends of the database", lambda r: _cpu(r, PG_BACKENDS)),
    ("PostgreSQL server processes (shared)", lambda r: _cpu(r, PG_SERVER)),
    ("broker CPU", lambda r: _cpu(r, "broker")),
    ("generator CPU", lambda r: _cpu(r, "generator")),
    ("other load (cores)", lambda r: "–" if r.cpu.other_load() is None else f"{r.cpu.other_load():.2f}"),
    ("sent / verdicts / OK", lambda r: f"{r.sent:,} / {r.answered:,} / {r.ok:,}"),
    ("ledger: units used / OK records", _ledger),
    (
        "lost / duplicate / stray",
        lambda r: f"{r.lost} / {r.duplicates} / {r.strays + r.misrouted + r.bad_verdicts}",
    ),
)


def side_by_side(configs: Sequence[Config]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one row per scenario and figure, one column per configuration."""
    header = ["run", "figure", *(f"{c.workers} worker{'s' if c.workers > 1 else ''}" for c in configs)]
    rows: list[list[str]] = []
    for name in ("open", "saturate"):
        present = [c for c in configs if name in c.results]
        if not present:
            continue
        label = present[0].results[name].label
        for i, (fig, get) in enumerate(FIGURES):
            rows.append(
                [
                    label if i == 0 else "",
                    fig,
                    *(get(c.results[name]) if name in c.results else "–" for c in configs),
                ]
            )
        rows.append(["", "scans taken per worker", *(_split(c.split.get(name, [])) for c in configs)])
    rows.append(
        [
            "",
            "one committed INSERT before the runs, p50 / p99 ms",
            *("–" if c.commit is None else f"{c.commit.p50:.2f} / {c.commit.p99:.2f}" for c in configs),
        ]
    )
    return header, rows


NOTE = (
    "CPU: CPU seconds / wall seconds over each run, and CPU per verdict. 'PostgreSQL backends' are the server "
    "processes connected to the benchmark's database; 'server processes' are the postmaster and its background "
    "processes (WAL writer, checkpointer…), which also serve the other databases on that server. A backend that "
    "ended during a run is not counted. 'other load': everything else on this machine meanwhile (noise)."
)


def print_side_by_side(console: Console, configs: Sequence[Config], server: PgServer) -> None:
    header, rows = side_by_side(configs)
    t = Table(title=f"Hexiao on PostgreSQL {server.version}: workers side by side (scan publish -> verdict)")
    for h in header:
        t.add_column(h, justify="left" if h in ("run", "figure") else "right")
    for row in rows:
        t.add_row(*row)
    console.print(t)
    console.print(f"[dim]{NOTE}[/dim]")
    for c in configs:
        for r in c.results.values():
            extra = result_notes(r)
            if extra:
                console.print(f"[yellow]{c.workers} worker(s), {r.label}:[/yellow] " + "; ".join(extra))
    t = Table(title="Correctness (every configuration)")
    for col in ("check", "wanted", "measured", ""):
        t.add_column(col)
    for chk in correctness_checks([r for c in configs for r in c.results.values()]):
        t.add_row(
            chk.what, chk.target, chk.measured, "[green]met[/green]" if chk.met else "[red]NOT met[/red]"
        )
    console.print(t)


def markdown_side_by_side(
    configs: Sequence[Config], server: PgServer, info: dict[str, str], command: str
) -> str:
    header, rows = side_by_side(configs)
    lines = [f"Command: `{command}`", ""]
    lines += [f"- {k}: {v}" for k, v in {**info, "postgresql": server.version}.items()]
    lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", NOTE, "", "| check | wanted | measured | |", "|---|---|---|---|"]
    checks = correctness_checks([r for c in configs for r in c.results.values()])
    lines += [f"| {c.what} | {c.target} | {c.measured} | {'met' if c.met else 'NOT met'} |" for c in checks]
    return "\n".join(lines) + "\n"


def parse_workers(text: str) -> list[int]:
    try:
        ns = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        ns = []
    if not ns or any(not 1 <= n <= 8 for n in ns):
        raise argparse.ArgumentTypeError(f"--workers wants a list like 1,2 (each 1..8), got {text!r}")
    return ns


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sp = sub.add_parser(
        "workers",
        help="PostgreSQL, 1 and then 2 gateway workers, side by side: what `make bench-workers` runs",
    )
    sp.add_argument(
        "--server",
        default=DEFAULT_SERVER,
        metavar="URL",
        help="a PostgreSQL server on this machine (an admin login): each configuration gets a database "
        f"{DB_PREFIX}<random> there, dropped afterwards (default {DEFAULT_SERVER})",
    )
    sp.add_argument(
        "--workers", type=parse_workers, default=[1, 2], help="configurations to run (default 1,2)"
    )
    sp.add_argument("--orders", type=int, default=50, help="orders created per run; scans cycle through them")
    sp.add_argument("--rate", type=float, default=500.0, help="(b) scans per second")
    sp.add_argument("--open-seconds", type=float, default=15.0, help="(b) how long")
    sp.add_argument("--open-devices", type=int, default=50, help="(b) devices sharing the rate")
    sp.add_argument("--arrivals", choices=("poisson", "uniform"), default="poisson")
    sp.add_argument("--sat-devices", type=int, default=200, help="(c) devices")
    sp.add_argument("--window", type=int, default=1, help="(c) scans in flight per device")
    sp.add_argument("--sat-seconds", type=float, default=15.0, help="(c) how long")
    sp.add_argument("--warmup", type=float, default=2.0, help="(c) seconds not counted in throughput")
    sp.add_argument(
        "--gateway-env", action="append", default=[], metavar="K=V", help="extra env for the workers"
    )
    sp.add_argument(
        "--keep-workdir", action="store_true", help="keep the temporary broker/worker directories"
    )
    sp.add_argument("--markdown", type=Path, metavar="FILE", help="also write the table as markdown")
    sp.add_argument("--hard-timeout", type=int, default=600, help="end everything after this many seconds")


def exit_status(configs: Sequence[Config]) -> int:
    """0 when every configuration was correct (lost/duplicate/ledger), 1 otherwise; never about speed."""
    results = [r for c in configs for r in c.results.values()]
    return 0 if results and all(c.met for c in correctness_checks(results)) else 1


def run(args: argparse.Namespace, console: Console, argv: Sequence[str]) -> int:
    """The `workers` mode once its arguments are parsed (the caller set the hard timeout)."""
    info = machine_info()
    server = PgServer(args.server)
    try:
        console.print(
            f"[dim]PostgreSQL {server.version} at {server.host}:{server.port} "
            f"(server pid {server.postmaster or 'not on this machine: its CPU is not measured'})[/dim]"
        )
        configs = [run_config(server, n, args, console) for n in args.workers]
        print_side_by_side(console, configs, server)
        if args.markdown:
            cmd = "python -m tools.loadgen " + shlex.join(argv)
            args.markdown.write_text(markdown_side_by_side(configs, server, info, cmd))
            console.print(f"[dim]wrote {args.markdown}[/dim]")
    finally:
        server.close()
    return exit_status(configs)
