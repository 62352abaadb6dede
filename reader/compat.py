# MicroPython's few non-CPython APIs, provided on CPython so that firmware/hx runs unchanged.
# Why a shim and not a copy: the UI state machine, protocol, outbox and codes stay ONE core for the
# ESP32 and the Linux reader; only what MicroPython has and CPython lacks is filled in here.
from __future__ import annotations

import asyncio
import gc
import os
import resource
import sys
import time
import traceback
import types
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any

FIRMWARE = Path(__file__).resolve().parent.parent / "firmware"
_PERIOD = 1 << 30  # MicroPython's ticks wrap at 2**30 on its ports: the core's arithmetic expects it
_HALF = _PERIOD >> 1


def ticks_ms() -> int:
    return (time.monotonic_ns() // 1_000_000) & (_PERIOD - 1)


def ticks_add(t: int, delta: int) -> int:
    return (t + delta) & (_PERIOD - 1)


def ticks_diff(a: int, b: int) -> int:
    return ((a - b + _HALF) & (_PERIOD - 1)) - _HALF


def sleep_ms(ms: int) -> Awaitable[None]:
    return asyncio.sleep(ms / 1000)


def wait_for_ms(aw: Awaitable[Any], ms: int) -> Awaitable[Any]:
    return asyncio.wait_for(aw, ms / 1000)


def print_exception(e: BaseException, file: Any = None) -> None:
    traceback.print_exception(e, file=file or sys.stderr)


def mem_alloc() -> int:
    """The process's peak resident memory in bytes (the figure the status heartbeat reports)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def mem_free() -> int:
    """Memory the machine still has available (MicroPython: free heap)."""
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def ilistdir(path: str) -> Iterator[tuple[str, int, int]]:
    """MicroPython's os.ilistdir: (name, type, inode); type 0x4000 for a directory, 0x8000 a file."""
    with os.scandir(path) as it:
        for e in it:
            yield e.name, 0x4000 if e.is_dir() else 0x8000, e.inode()


def durable_write(path: str, data: bytes) -> None:
    """hx.store's write_atomic made durable on a Linux filesystem: temp file, fsync, rename, fsync of
    the folder. On the ESP32 LittleFS commits on close; ext4 may keep both the data and the rename
    in the page cache for seconds, and a power cut then loses a scan the screen showed as queued."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    dfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def install() -> None:
    """Put firmware/ on sys.path and the missing MicroPython APIs in place (idempotent)."""
    if str(FIRMWARE) not in sys.path:
        sys.path.insert(0, str(FIRMWARE))
    t: Any = time
    t.ticks_ms, t.ticks_add, t.ticks_diff = ticks_ms, ticks_add, ticks_diff
    a: Any = asyncio
    a.sleep_ms, a.wait_for_ms = sleep_ms, wait_for_ms
    s: Any = sys
    s.print_exception = print_exception
    g: Any = gc
    g.mem_alloc, g.mem_free = mem_alloc, mem_free
    o: Any = os
    o.ilistdir = ilistdir
    if "micropython" not in sys.modules:
        try:
            import micropython  # noqa: F401  (Adafruit Blinka ships one with const())
        except ImportError:
            mod = types.ModuleType("micropython")
            mod.const = lambda x: x  # type: ignore[attr-defined]
            sys.modules["micropython"] = mod
    import hx.store

    hx.store.write_atomic = durable_write
