# The fresh-machine check's pure parts: which architectures, how each is emulated, timings and the report.
from __future__ import annotations

import argparse
import platform
from dataclasses import dataclass, field
from pathlib import Path

SUITE = "trixie"  # Debian 13: Python 3.13
MIRROR = "http://deb.debian.org/debian"
# What docs/install.md has a new machine install before cloning (python3-venv and mosquitto come from
# `make system-deps`, which the check runs on its own so that tools/system_deps.sh is exercised too).
PREREQS = ("ca-certificates", "git", "make", "python3")
USER = "hexiao"  # make run runs as this unprivileged user, as docs/install.md tells a person to


@dataclass(frozen=True)
class Arch:
    debian: str  # Debian's name (debootstrap --arch)
    machine: str  # what `uname -m` prints there
    qemu: str  # Debian's qemu-user-static binary that runs it on another machine
    magic: bytes  # the ELF header binfmt_misc matches (the same entry qemu-user-static ships)
    mask: bytes


ARCHES = {
    "amd64": Arch(
        "amd64",
        "x86_64",
        "qemu-x86_64-static",
        b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00",
        b"\xff\xff\xff\xff\xff\xfe\xfe\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    ),
    "arm64": Arch(
        "arm64",
        "aarch64",
        "qemu-aarch64-static",
        b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00",
        b"\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff",
    ),
}


def host_arch(machine: str | None = None) -> str:
    """The Debian name of this machine's architecture ('' when it is neither of ours)."""
    m = machine or platform.machine()
    return next((a.debian for a in ARCHES.values() if a.machine == m), "")


def binfmt_rule(arch: Arch, interpreter: str) -> bytes:
    """The line written to /proc/sys/fs/binfmt_misc/register. Flag F opens the interpreter now, so it
    need not exist inside the root; P keeps argv[0] as the program named it."""

    def esc(b: bytes) -> bytes:
        return b"".join(b"\\x%02x" % c for c in b)

    return b":%s:M::%s:%s:%s:FP" % (
        arch.qemu.removesuffix("-static").encode(),
        esc(arch.magic),
        esc(arch.mask),
        interpreter.encode(),
    )


@dataclass(frozen=True)
class Options:
    arches: tuple[str, ...]
    cache: Path
    mirror: str
    keep: bool
    timeout_scale: float  # arm64 under qemu is several times slower: its waits are scaled by this


def parse_args(argv: list[str] | None = None) -> Options:
    p = argparse.ArgumentParser(
        prog="python -m tools.fresh",
        description="Debootstrap Debian 13 roots, run `make run` in each, redeem a demo code over REST and MQTT.",
    )
    p.add_argument("--arch", default="amd64,arm64", help="comma-separated: amd64, arm64 (default both)")
    p.add_argument("--cache", type=Path, default=Path("build/fresh"), help="base tarballs and logs")
    p.add_argument("--mirror", default=MIRROR, help="Debian mirror for debootstrap and apt")
    p.add_argument("--keep", action="store_true", help="leave the unpacked roots for inspection")
    p.add_argument("--timeout-scale", type=float, default=6.0, help="waits are this much longer under qemu")
    a = p.parse_args(argv)
    arches = tuple(x.strip() for x in a.arch.split(",") if x.strip())
    unknown = [x for x in arches if x not in ARCHES]
    if unknown or not arches:
        p.error(f"--arch: unknown {', '.join(unknown) or '(none)'}; choose from {', '.join(ARCHES)}")
    if a.timeout_scale < 1:
        p.error("--timeout-scale must be at least 1")
    return Options(tuple(dict.fromkeys(arches)), a.cache, a.mirror, a.keep, a.timeout_scale)


def base_name(arch: str, suite: str = SUITE, prereqs: tuple[str, ...] = PREREQS) -> str:
    """The cached tarball's name: a different package set or suite is a different base."""
    return f"{suite}-{arch}-minbase-{'-'.join(sorted(prereqs))}.tar"


@dataclass
class Result:
    arch: str
    ok: bool = False
    why: str = ""  # the first failure, in a sentence
    seconds: dict[str, float] = field(default_factory=dict)  # step -> wall seconds
    facts: dict[str, str] = field(default_factory=dict)  # python version, cached base, ...


STEPS = (
    ("debootstrap", "debootstrap (base root; 0 when taken from the cache)"),
    ("unpack", "unpack the cached base"),
    ("system_deps", "make system-deps (python3-venv, mosquitto)"),
    ("run_to_health", "make run to the first health answer (venv, pip, start)"),
    ("redeem_rest", "redeem a demo code over REST"),
    ("redeem_mqtt", "redeem a demo code over MQTT (scan to verdict)"),
)


def seconds(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s < 1 else f"{s:.1f} s"


def report(results: list[Result]) -> str:
    """A Markdown table of the runs (pasted into docs/install.md) and one line per failure."""
    cols = [r.arch for r in results]
    lines = ["| step | " + " | ".join(cols) + " |", "| --- |" + " ---: |" * len(cols)]
    for key, label in STEPS:
        cells = [seconds(r.seconds[key]) if key in r.seconds else "—" for r in results]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for fact in sorted({k for r in results for k in r.facts}):
        lines.append(f"| {fact} | " + " | ".join(r.facts.get(fact, "—") for r in results) + " |")
    lines.append("| result | " + " | ".join("PASS" if r.ok else "FAIL" for r in results) + " |")
    lines += [f"{r.arch}: FAILED: {r.why}" for r in results if not r.ok]
    return "\n".join(lines)
