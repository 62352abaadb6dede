# Percentiles, the per-run tally of scans and verdicts, and CPU readings of this and other processes.
from __future__ import annotations

import math
import os
import resource
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

# A group of processes whose CPU counts as one (several gateway workers, a database server's processes):
# asked for its members' pids at every snapshot, since a server's backends come and go during a run.
PidGroup = Callable[[], Iterable[int]]


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an ascending sequence: the smallest value with at least p % at or below it.

    Nearest rank (no interpolation) so every figure we print is a round trip that really happened.
    """
    if not sorted_values:
        raise ValueError("percentile of an empty sequence")
    if not 0.0 <= p <= 100.0:
        raise ValueError(f"percentile must be within 0..100, got {p}")
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True, slots=True)
class Latency:
    """Round-trip summary in milliseconds."""

    n: int
    p50: float
    p90: float
    p99: float
    max: float
    mean: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency | None:
        if not seconds:
            return None
        s = sorted(seconds)
        ms = 1000.0
        return cls(
            n=len(s),
            p50=percentile(s, 50) * ms,
            p90=percentile(s, 90) * ms,
            p99=percentile(s, 99) * ms,
            max=s[-1] * ms,
            mean=sum(s) / len(s) * ms,
        )


@dataclass(slots=True)
class Tally:
    """Every scan sent and every verdict received in one run, keyed by scan id (unique within a run).

    This is what proves "zero lost, zero duplicate": a sid sent and never answered is lost; a sid
    answered twice is a duplicate; an answer for a sid we never sent (or on another device's topic)
    is stray / misrouted.
    """

    sent: dict[str, tuple[float, str]] = field(default_factory=dict)  # sid -> (send time, device)
    answered: set[str] = field(default_factory=set)
    latencies: list[float] = field(default_factory=list)  # seconds, in arrival order
    arrivals: list[float] = field(default_factory=list)  # perf_counter of each first verdict
    reasons: Counter[str] = field(default_factory=Counter)
    ok: int = 0
    duplicates: int = 0
    strays: int = 0
    misrouted: int = 0
    bad_verdicts: int = 0

    def on_sent(self, sid: str, device: str, now: float) -> None:
        if sid in self.sent:
            raise ValueError(f"scan id reused within a run: {sid}")
        self.sent[sid] = (now, device)

    def on_verdict(self, sid: str, device: str, ok: bool, reason: str, now: float) -> bool:
        """Record one verdict; True when it is the first answer to a scan we sent."""
        entry = self.sent.get(sid)
        if entry is None:
            self.strays += 1
            return False
        if sid in self.answered:
            self.duplicates += 1
            return False
        t0, sent_by = entry
        if sent_by != device:
            self.misrouted += 1
        self.answered.add(sid)
        self.latencies.append(now - t0)
        self.arrivals.append(now)
        self.reasons[reason] += 1
        if ok:
            self.ok += 1
        return True

    @property
    def lost(self) -> int:
        return len(self.sent) - len(self.answered)

    @property
    def outstanding(self) -> int:
        return len(self.sent) - len(self.answered)

    def lost_sids(self, limit: int = 10) -> list[str]:
        return [sid for sid in self.sent if sid not in self.answered][:limit]

    def completed_between(self, start: float, end: float) -> int:
        return sum(1 for t in self.arrivals if start <= t < end)


def durable_commit_latency(directory: str, commits: int = 50) -> Latency | None:
    """Round trips of one small durable SQLite commit (WAL, synchronous=FULL) in `directory`, now.

    The gateway's verdict waits for exactly such a commit, so this is the floor under every round trip
    the benchmark reports; on a shared machine it moves with other jobs' disk traffic, and is printed
    next to the figures for that reason.
    """
    import sqlite3
    import tempfile

    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        con = sqlite3.connect(os.path.join(tmp, "probe.db"), isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=FULL")
            con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
            took: list[float] = []
            for i in range(commits):
                t0 = time.perf_counter()
                con.execute("BEGIN IMMEDIATE")
                con.execute("INSERT INTO t (v) VALUES (?)", (f"row {i}",))
                con.execute("COMMIT")
                took.append(time.perf_counter() - t0)
        finally:
            con.close()
    return Latency.of(took)


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: int) -> float | None:
    """user + system CPU seconds of a live process from /proc/<pid>/stat (None if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = raw[raw.rindex(b")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _CLK_TCK


def process_rss_bytes(pid: int) -> int | None:
    """Resident set size of a live process from /proc/<pid>/status (None if it is gone)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def machine_busy_seconds() -> float | None:
    """CPU seconds all CPUs of this machine spent busy (not idle / iowait) since boot, from /proc/stat."""
    try:
        with open("/proc/stat", "rb") as f:
            fields = f.readline().split()
    except OSError:
        return None
    # cpu user nice system idle iowait irq softirq steal ...
    ticks = [int(x) for x in fields[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / _CLK_TCK


def self_cpu_seconds() -> float:
    """CPU seconds (user + system) used by this process so far, all threads."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


@dataclass(frozen=True, slots=True)
class CpuSnapshot:
    wall: float
    generator: float
    others: dict[str, float | None]
    groups: dict[str, dict[int, float]] = field(default_factory=dict)  # name -> {pid: CPU seconds}


def cpu_snapshot(pids: dict[str, int], groups: Mapping[str, PidGroup] | None = None) -> CpuSnapshot:
    others = {name: process_cpu_seconds(pid) for name, pid in pids.items()}
    others["machine"] = machine_busy_seconds()
    members: dict[str, dict[int, float]] = {}
    for name, group in (groups or {}).items():
        readings = {pid: process_cpu_seconds(pid) for pid in group()}
        members[name] = {pid: s for pid, s in readings.items() if s is not None}
    return CpuSnapshot(wall=time.perf_counter(), generator=self_cpu_seconds(), others=others, groups=members)


@dataclass(frozen=True, slots=True)
class CpuUse:
    """CPU seconds spent by each process between two snapshots, with the wall time between them."""

    wall: float
    seconds: dict[str, float | None]

    @classmethod
    def between(cls, a: CpuSnapshot, b: CpuSnapshot) -> CpuUse:
        secs: dict[str, float | None] = {"generator": b.generator - a.generator}
        for name, before in a.others.items():
            after = b.others.get(name)
            secs[name] = None if before is None or after is None else after - before
        for name, now in b.groups.items():
            # A member that started during the run counts all its CPU (it was spent within the run); one
            # that ended during the run is missed (it is no longer there to read).
            then = a.groups.get(name, {})
            secs[name] = sum(s - then.get(pid, 0.0) for pid, s in now.items()) if now else None
        return cls(wall=b.wall - a.wall, seconds=secs)

    def other_load(self) -> float | None:
        """Cores used by everything else on the machine during the run (other jobs, the kernel): a noise gauge."""
        machine = self.seconds.get("machine")
        if machine is None or self.wall <= 0:
            return None
        ours = sum(v for k, v in self.seconds.items() if k != "machine" and v is not None)
        return max(0.0, machine - ours) / self.wall

    def cores(self, name: str) -> float | None:
        s = self.seconds.get(name)
        return None if s is None or self.wall <= 0 else s / self.wall

    def per_scan_us(self, name: str, scans: int) -> float | None:
        s = self.seconds.get(name)
        return None if s is None or scans <= 0 else s / scans * 1e6
