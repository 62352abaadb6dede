# Token buckets and sliding windows: pure policies that take `now` (a looping scanner, a code guesser).
from __future__ import annotations

from collections import deque


class TokenBuckets:
    """`rate` tokens per second per key, bursts up to `burst`. rate 0 disables limiting."""

    def __init__(self, rate: float, burst: float | None = None, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(1.0, rate * 2)
        self.max_keys = max_keys
        self._state: dict[str, tuple[float, float]] = {}

    def allow(self, key: str, now: float) -> bool:
        if self.rate <= 0:
            return True
        tokens, last = self._state.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1.0:
            self._state[key] = (tokens, now)
            return False
        if len(self._state) >= self.max_keys and key not in self._state:
            # Bounded memory: forgetting every bucket only makes limiting briefly more lenient.
            self._state.clear()
        self._state[key] = (tokens - 1.0, now)
        return True

    def give_back(self, key: str) -> None:
        """Return the token an `allow` took (when a second limit refused the same request)."""
        if key in self._state:
            tokens, last = self._state[key]
            self._state[key] = (min(self.burst, tokens + 1.0), last)


class SlidingWindow:
    """How many events each key had in the last `window` seconds (`now` passed in, bounded memory)."""

    def __init__(self, window: float, max_keys: int = 10_000) -> None:
        self.window = window
        self.max_keys = max_keys
        self._events: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._events.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def add(self, key: str, now: float) -> int:
        """Count one event; returns the key's events in the window, this one included."""
        q = self._recent(key, now)
        q.append(now)
        if len(self._events) > self.max_keys:  # forget idle keys
            for k in [k for k, v in self._events.items() if not v or v[-1] <= now - self.window]:
                del self._events[k]
        return len(q)

    def wait(self, key: str, limit: int, now: float) -> float:
        """0 while the key had fewer than `limit` events in the window, else the seconds until it has."""
        q = self._recent(key, now)
        return q[-limit] + self.window - now if len(q) >= limit else 0.0

    def forget(self, key: str) -> None:
        self._events.pop(key, None)
