# Per-device token bucket: a pure policy that takes `now`, so a scanner stuck in a loop can't flood the ledger.
from __future__ import annotations


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
