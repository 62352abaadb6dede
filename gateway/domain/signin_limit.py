# Sign-in back-off: pure sliding windows of failures per name@address, per address and per name (`now` injected).
from __future__ import annotations

import threading

from gateway.domain.ratelimit import SlidingWindow

NAME_FACTOR = 10  # failures of one name from all addresses together, in max_failures
KNOWN_PER_NAME = 16  # addresses remembered per name as ones it signed in from


class LoginLimiter:
    """At most `max_failures` failed sign-ins per `window` seconds for one name from one client address,
    4× that for one address (so one guesser cannot sweep many names), and 10× that for one name from
    all addresses together (so a guesser who changes address every few tries is still slowed down).

    A name is never locked for everyone: the name-wide bound does not apply at an address where that
    name signed in before, so a stranger guessing `owner` from many addresses does not keep the owner
    out of the desk they always sign in from. Success clears that name at that address only.
    """

    def __init__(self, max_failures: int = 5, window: float = 300.0) -> None:
        self.max_failures = max_failures
        self._fails = SlidingWindow(window)
        self._known: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    def _keys(self, name: str, addr: str) -> list[tuple[str, int]]:
        n = name.lower()
        keys = [(f"n:{n}@{addr}", self.max_failures), ("a:" + addr, self.max_failures * 4)]
        if addr not in self._known.get(n, ()):
            keys.append(("N:" + n, self.max_failures * NAME_FACTOR))
        return keys

    def retry_after(self, name: str, addr: str, now: float) -> float:
        """0 when a sign-in may be tried now, else the seconds to wait."""
        with self._lock:
            return max(self._fails.wait(key, limit, now) for key, limit in self._keys(name, addr))

    def failed(self, name: str, addr: str, now: float) -> None:
        with self._lock:
            for key in (f"n:{name.lower()}@{addr}", "a:" + addr, "N:" + name.lower()):
                self._fails.add(key, now)

    def succeeded(self, name: str, addr: str) -> None:
        with self._lock:
            n = name.lower()
            self._fails.forget(f"n:{n}@{addr}")
            known = self._known.setdefault(n, [])
            if addr not in known:
                known.append(addr)
                del known[:-KNOWN_PER_NAME]
