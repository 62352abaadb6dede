# Presents run results: a rich table on the terminal, the same figures as markdown, and the target check.
from __future__ import annotations

import os
import platform
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from tools.loadgen.modes import RunResult

# The targets (durable, broker + gateway + load on one 2-core box).
TARGET_P50_MS = 2.0
TARGET_P99_MS = 10.0
TARGET_OPEN_RATE = 500.0
TARGET_SATURATION_PER_S = 5000.0  # durable redemptions/s on SQLite
TARGET_CPU_US_AT_500 = 500.0  # gateway CPU per verdict at 500 scans/s (a Raspberry Pi 4 carries a venue)


@dataclass(frozen=True, slots=True)
class Check:
    what: str
    target: str
    measured: str
    met: bool


def _fmt(v: float | None, spec: str = ".2f") -> str:
    return "–" if v is None else format(v, spec)


def _ledger(r: RunResult) -> str:
    """Units used on the run's orders; with `/n` the OK records written meanwhile when they differ."""
    if r.ledger_ok is None:
        return "–"
    if r.ledger_rows_ok is None or r.ledger_rows_ok == r.ledger_ok:
        return str(r.ledger_ok)
    return f"{r.ledger_ok}/{r.ledger_rows_ok} rows"


def _cpu(r: RunResult, name: str) -> str:
    cores = r.cpu.cores(name)
    per = r.cpu.per_scan_us(name, r.answered)
    if cores is None or per is None:
        return "–"
    return f"{cores:.2f} ({per:.0f} µs)"


COLUMNS = (
    "run",
    "sent",
    "verdicts",
    "OK",
    "ledger OK",
    "lost",
    "dup",
    "verdicts/s",
    "p50 ms",
    "p90 ms",
    "p99 ms",
    "max ms",
    "gen CPU",
    "gateway CPU",
    "broker CPU",
    "other load",
)


def rows(results: Sequence[RunResult]) -> list[list[str]]:
    out = []
    for r in results:
        lat = r.latency
        out.append(
            [
                r.label,
                str(r.sent),
                str(r.answered),
                str(r.ok),
                _ledger(r),
                str(r.lost),
                str(r.duplicates),
                f"{r.throughput:,.0f}",
                _fmt(lat.p50 if lat else None),
                _fmt(lat.p90 if lat else None),
                _fmt(lat.p99 if lat else None),
                _fmt(lat.max if lat else None),
                _cpu(r, "generator"),
                _cpu(r, "gateway"),
                _cpu(r, "broker"),
                _fmt(r.cpu.other_load()),
            ]
        )
    return out


def checks(results: Sequence[RunResult]) -> list[Check]:
    """The issue's targets against what we measured (only for the runs that correspond to them)."""
    out: list[Check] = []
    for r in results:
        if (
            r.mode == "open"
            and r.latency is not None
            and abs(r.throughput - TARGET_OPEN_RATE) < 0.2 * TARGET_OPEN_RATE
        ):
            out.append(
                Check(
                    "p50 at 500 scans/s",
                    f"≤ {TARGET_P50_MS:g} ms",
                    f"{r.latency.p50:.2f} ms",
                    r.latency.p50 <= TARGET_P50_MS,
                )
            )
            out.append(
                Check(
                    "p99 at 500 scans/s",
                    f"≤ {TARGET_P99_MS:g} ms",
                    f"{r.latency.p99:.2f} ms",
                    r.latency.p99 <= TARGET_P99_MS,
                )
            )
            per = r.cpu.per_scan_us("gateway", r.answered)
            if per is not None:
                out.append(
                    Check(
                        "gateway CPU per verdict at 500 scans/s",
                        f"≤ {TARGET_CPU_US_AT_500:g} µs",
                        f"{per:,.0f} µs",
                        per <= TARGET_CPU_US_AT_500,
                    )
                )
        if r.mode == "saturate":
            out.append(
                Check(
                    f"redemptions/s at saturation ({r.devices} devices)",
                    f"≥ {TARGET_SATURATION_PER_S:,.0f}/s",
                    f"{r.ok_per_s:,.0f}/s",
                    r.ok_per_s >= TARGET_SATURATION_PER_S,
                )
            )
    lost = sum(r.lost for r in results)
    dup = sum(r.duplicates for r in results)
    other = sum(r.strays + r.misrouted + r.bad_verdicts for r in results)
    ledger_bad = [
        r.label
        for r in results
        if (r.ledger_ok is not None and r.ledger_ok != r.ok)
        or (r.ledger_rows_ok is not None and r.ledger_rows_ok != r.ok)
    ]
    out.append(Check("lost verdicts", "0", str(lost), lost == 0))
    out.append(Check("duplicate verdicts", "0", str(dup), dup == 0))
    out.append(Check("stray / misrouted / unreadable verdicts", "0", str(other), other == 0))
    unacked = sum(r.unacked_publishes for r in results)
    out.append(Check("scans the broker never acknowledged (PUBACK)", "0", str(unacked), unacked == 0))
    if any(r.ledger_ok is not None for r in results):
        out.append(
            Check(
                "OK verdicts = ledger redemptions",
                "equal",
                "equal" if not ledger_bad else "differ: " + ", ".join(ledger_bad),
                not ledger_bad,
            )
        )
    return out


def correctness_checks(results: Sequence[RunResult]) -> list[Check]:
    """The checks an exit status may depend on: lost, duplicate, stray verdicts, PUBACKs, the ledger —
    never the speed targets."""
    return [c for c in checks(results) if not c.what.startswith(("p50", "p99", "redemptions/s"))]


def result_notes(r: RunResult) -> list[str]:
    """What a run's table row does not show: refusals, strays, missing PUBACKs, lost samples, lag."""
    extra = []
    if r.reasons and set(r.reasons) != {"OK"}:
        extra.append("reasons " + ", ".join(f"{k}={v}" for k, v in sorted(r.reasons.items())))
    if r.strays or r.misrouted or r.bad_verdicts:
        extra.append(f"stray={r.strays} misrouted={r.misrouted} unreadable={r.bad_verdicts}")
    if r.unacked_publishes:
        extra.append(f"{r.unacked_publishes} scans without PUBACK")
    if r.lost_sample and r.lost:
        extra.append("lost e.g. " + ", ".join(r.lost_sample[:5]))
    if r.sched_lag_max_ms is not None and r.sched_lag_max_ms > 5:
        extra.append(f"generator fell behind schedule by up to {r.sched_lag_max_ms:.1f} ms")
    return extra + list(r.notes)


def print_results(console: Console, results: Sequence[RunResult]) -> None:
    table = Table(title="Hexiao MQTT round trips (scan publish -> verdict arrival)", show_lines=False)
    for name in COLUMNS:
        table.add_column(name, justify="left" if name == "run" else "right")
    for row in rows(results):
        table.add_row(*row)
    console.print(table)
    console.print(
        "[dim]CPU columns: cores used during the run (CPU seconds / wall seconds) and CPU per verdict. "
        "other load: cores used by everything else on this machine meanwhile (noise).[/dim]"
    )
    for r in results:
        extra = result_notes(r)
        if extra:
            console.print(f"[yellow]{r.label}:[/yellow] " + "; ".join(extra))
    t = Table(title="Targets")
    for col in ("target", "wanted", "measured", ""):
        t.add_column(col)
    for c in checks(results):
        t.add_row(c.what, c.target, c.measured, "[green]met[/green]" if c.met else "[red]NOT met[/red]")
    console.print(t)


def machine_info() -> dict[str, str]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        mosq = subprocess.run(
            ["mosquitto", "-h"], capture_output=True, text=True, timeout=5
        ).stdout.splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        mosq = "unknown"
    try:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "unknown"
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpus": str(os.cpu_count()),
        "cpu model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "mosquitto": mosq,
        "load average before": load,
    }


def markdown(results: Sequence[RunResult], info: dict[str, str], command: str) -> str:
    lines = [f"Command: `{command}`", ""]
    lines += [f"- {k}: {v}" for k, v in info.items()]
    lines += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(results)]
    lines += [
        "",
        "CPU columns: cores used during the run (CPU s / wall s) and, in brackets, CPU per verdict.",
        "",
    ]
    for r in results:
        if r.reasons:
            lines.append(
                f"- {r.label}: reasons " + ", ".join(f"{k}={v}" for k, v in sorted(r.reasons.items()))
            )
    lines += ["", "| target | wanted | measured | |", "|---|---|---|---|"]
    lines += [
        f"| {c.what} | {c.target} | {c.measured} | {'met' if c.met else 'NOT met'} |" for c in checks(results)
    ]
    return "\n".join(lines) + "\n"
