# Optional sampling profile of the gateway during a load run (py-spy), summarised as the top functions per thread.
#
# py-spy samples another process from outside, all threads, at low overhead, so the gateway runs unchanged
# (cProfile would see only the thread it was started in and slow every call). It is not a dependency of
# `make bench`: `--profile DIR` asks for it and says how to install it when it is missing.
from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

# Leaf frames where a thread waits rather than works; py-spy does not always mark them idle.
IDLE_LEAVES = (
    "Condition.wait",
    "EpollSelector.select",
    "Queue.get",
    "select (selectors",
    "_loop (paho/mqtt/client.py:1667)",
)
_PATH_PREFIX = re.compile(r"\((?:[^()]*/site-packages/|[^()]*/lib/python3\.\d+/|[^()]*/(?=gateway/|tools/))")
_LINE = re.compile(r":\d+\)$")


def find_py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


class Recorder:
    """Runs `py-spy record` against a pid until stopped, writing collapsed stacks ("raw") to a file."""

    def __init__(self, pid: int, out: Path, rate: int = 100) -> None:
        exe = find_py_spy()
        if exe is None:
            raise RuntimeError("py-spy is not installed: .venv/bin/pip install py-spy==0.4.3")
        self.out = out
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [exe, "record", "-p", str(pid), "-r", str(rate)]
        cmd += ["-f", "raw", "-o", str(out), "--threads", "--nonblocking"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self, timeout: float = 60.0) -> str:
        """Stop sampling (SIGINT makes py-spy write its file) and return the tail of its messages."""
        self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err.decode(errors="replace")[-500:]


@dataclass(frozen=True, slots=True)
class Summary:
    samples: int
    busy: int
    threads: dict[str, int]
    inclusive: dict[str, list[tuple[str, int]]]
    leaves: dict[str, list[tuple[str, int]]]


def _frame(f: str) -> str:
    return _LINE.sub(")", _PATH_PREFIX.sub("(", f))


def summarise(raw: str, top: int = 25) -> Summary:
    """Per thread: samples where it was working (not waiting), the functions on those stacks, the leaves."""
    total = busy = 0
    threads: Counter[str] = Counter()
    incl: defaultdict[str, Counter[str]] = defaultdict(Counter)
    leaves: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for line in raw.splitlines():
        stack, _, n_s = line.rstrip().rpartition(" ")
        if not stack or not n_s.isdigit():
            continue
        n = int(n_s)
        total += n
        frames = stack.split(";")
        if any(i in frames[-1] for i in IDLE_LEAVES):
            continue
        busy += n
        thread = re.sub(r"\s*\(\d+\)", "", frames[0]).replace("thread", "").strip(" :") or "?"
        threads[thread] += n
        names = [_frame(f) for f in frames[1:]]
        for name in set(names):
            incl[thread][name] += n
        if names:
            leaves[thread][names[-1]] += n
    return Summary(
        samples=total,
        busy=busy,
        threads=dict(threads.most_common()),
        inclusive={t: c.most_common(top) for t, c in incl.items()},
        leaves={t: c.most_common(top) for t, c in leaves.items()},
    )


def render(s: Summary) -> str:
    if not s.busy:
        return "no busy samples"
    out = [f"{s.samples} samples, {s.busy} while working; shares below are of working samples"]
    for thread, n in s.threads.items():
        out.append(f"\nthread {thread}: {n / s.busy:.0%}")
        out.append("  on the stack (inclusive):")
        out += [
            f"    {m / s.busy:6.1%}  {name}" for name, m in s.inclusive[thread] if "threading.py" not in name
        ]
        out.append("  executing (leaf):")
        out += [f"    {m / s.busy:6.1%}  {name}" for name, m in s.leaves[thread][:10]]
    return "\n".join(out)
