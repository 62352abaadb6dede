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


class InOrderBuckets:
    """Per-device token buckets whose refusals keep the device's order (the scans-per-device limit).

    A device uploading a backlog sends several scans in flight. With a plain bucket, one is refused
    (RATE_LIMITED, transient: the device backs it off for seconds) while a later one, arriving after a
    token came back, is decided at once — the ledger then holds the scans out of their order, which
    in/out and pass-back rules depend on. So once a device's request is refused, the device is held:
    its refused requests are let through only in the order they were refused, and a new one waits
    behind them. The firmware resends its oldest waiting scans first, so the hold ends by itself; a
    head that does not come back within `hold_s` (a device that lost it, e.g. re-flashed) ends it too.
    """

    MAX_HELD = 64  # refused ids remembered per device (the firmware has a few in flight)

    def __init__(
        self, rate: float, burst: float | None = None, hold_s: float = 90.0, max_keys: int = 100_000
    ) -> None:
        self.buckets = TokenBuckets(rate, burst, max_keys)
        self.hold_s = hold_s
        self.max_keys = max_keys
        # device -> (its refused ids in refusal order, until when the first one may be waited for)
        self._held: dict[str, tuple[list[str], float]] = {}
        # device -> the held ids let through, until their verdict is settled or they are returned
        self._passed: dict[str, list[str]] = {}

    def allow(self, key: str, ident: str, now: float) -> bool:
        held = self._held.get(key)
        if held is not None and now >= held[1]:
            del self._held[key]  # the head never came back
            held = None
        if held is None:
            if self.buckets.allow(key, now):
                return True
            if len(self._held) >= self.max_keys:
                self._held.clear()  # bounded memory: forgetting holds only lets order slip, never a scan
            self._held[key] = ([ident], now + self.hold_s)
            return False
        order = held[0]
        if ident != order[0]:
            if ident not in order and len(order) < self.MAX_HELD:
                order.append(ident)
            return False  # must not overtake what was refused before it
        if not self.buckets.allow(key, now):
            self._held[key] = (order, now + self.hold_s)
            return False
        order.pop(0)
        if len(self._passed) >= self.max_keys:
            self._passed.clear()
        passed = self._passed.setdefault(key, [])
        if len(passed) < self.MAX_HELD:
            passed.append(ident)
        if order:
            self._held[key] = (order, now + self.hold_s)  # the next one's turn, with its own wait
        else:
            del self._held[key]
        return True

    def settled(self, key: str, ident: str, now: float) -> None:
        """`ident` got its verdict all the same (a copy of it was let through beside the refused one,
        or the ledger had it decided already): the device drops it and never sends it again, so the
        hold must not wait for it."""
        self._unpass(key, ident)
        held = self._held.get(key)
        if held is None or ident not in held[0]:
            return
        order = held[0]
        head = order[0] == ident
        order.remove(ident)
        if not order:
            del self._held[key]
        elif head:
            self._held[key] = (order, now + self.hold_s)

    def returned(self, key: str, ident: str, now: float) -> None:
        """`ident` was let through but not decided (its batch was not committed: INTERNAL, retry): it
        gets its token back, and when it was let through from a hold, its turn at the hold's head —
        the device may send the scans refused after it first, and they must not overtake it. Return
        a batch's ones last first (each goes to the head)."""
        self.buckets.give_back(key)
        held = self._held.get(key)
        if self._unpass(key, ident) and held is None:
            self._held[key] = held = ([], now + self.hold_s)
        if held is not None and ident not in held[0]:
            held[0].insert(0, ident)
            self._held[key] = (held[0], now + self.hold_s)

    def _unpass(self, key: str, ident: str) -> bool:
        passed = self._passed.get(key)
        if passed is None or ident not in passed:
            return False
        passed.remove(ident)
        if not passed:
            del self._passed[key]
        return True


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
