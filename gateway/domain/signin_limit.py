# Sign-in rate limit: a pure sliding window of failures per name and per client address (`now` injected).
from __future__ import annotations

import threading
from collections import deque


class LoginLimiter:
    """At most `max_failures` failed sign-ins per `window` seconds for one name, and 4× that for one
    client address (so one guesser cannot sweep many names). Success does not reset the address key.
    """

    def __init__(self, max_failures: int = 5, window: float = 300.0) -> None:
        self.max_failures = max_failures
        self.window = window
        self._fails: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _keys(self, name: str, addr: str) -> list[tuple[str, int]]:
        return [("n:" + name.lower(), self.max_failures), ("a:" + addr, self.max_failures * 4)]

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._fails.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def retry_after(self, name: str, addr: str, now: float) -> float:
        """0 when a sign-in may be tried now, else the seconds to wait."""
        with self._lock:
            wait = 0.0
            for key, limit in self._keys(name, addr):
                q = self._recent(key, now)
                if len(q) >= limit:
                    wait = max(wait, q[0] + self.window - now)
            return wait

    def failed(self, name: str, addr: str, now: float) -> None:
        with self._lock:
            for key, _ in self._keys(name, addr):
                self._recent(key, now).append(now)
            if len(self._fails) > 10_000:  # bounded memory: forget idle keys
                for k in [k for k, q in self._fails.items() if not q or q[-1] <= now - self.window]:
                    del self._fails[k]

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._fails.pop("n:" + name.lower(), None)
