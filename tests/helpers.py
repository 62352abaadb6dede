# Small helpers shared by tests: free ports and polling with a clear failure message.
from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from gateway.adapters.brokers.mosquitto import free_port

__all__ = ["free_port", "wait_for"]

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T], timeout: float = 15.0, what: str = "condition", interval: float = 0.05
) -> T:
    """Poll `predicate` until it returns something truthy; fail with `what` after `timeout` seconds.

    Timeouts here are generous upper bounds for waiting, never speed assertions.
    """
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last value: {last!r})")
