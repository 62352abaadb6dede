# Sign-in back-off: a pure sliding window of failures per name *and address*, and per address (`now` injected).
from __future__ import annotations

import threading

from gateway.domain.ratelimit import SlidingWindow


class LoginLimiter:
    """At most `max_failures` failed sign-ins per `window` seconds for one name from one client address,
    and 4× that for one address (so one guesser cannot sweep many names). A name is never locked for
    everyone: a stranger who fails as `owner` from their address locks out only themselves, the owner
    signs in from theirs. Success clears that name at that address, not the address's own count.
    """

    def __init__(self, max_failures: int = 5, window: float = 300.0) -> None:
        self.max_failures = max_failures
        self._fails = SlidingWindow(window)
        self._lock = threading.Lock()

    def _keys(self, name: str, addr: str) -> list[tuple[str, int]]:
        return [(f"n:{name.lower()}@{addr}", self.max_failures), ("a:" + addr, self.max_failures * 4)]

    def retry_after(self, name: str, addr: str, now: float) -> float:
        """0 when a sign-in may be tried now, else the seconds to wait."""
        with self._lock:
            return max(self._fails.wait(key, limit, now) for key, limit in self._keys(name, addr))

    def failed(self, name: str, addr: str, now: float) -> None:
        with self._lock:
            for key, _ in self._keys(name, addr):
                self._fails.add(key, now)

    def succeeded(self, name: str, addr: str) -> None:
        with self._lock:
            self._fails.forget(self._keys(name, addr)[0][0])
