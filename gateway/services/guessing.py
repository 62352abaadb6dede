# Abuse limits of typed codes (REST and console): calls per caller and per source, recorded misses, an alarm.
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from gateway.domain.errors import HexiaoError, NotFound
from gateway.domain.ratelimit import SlidingWindow, TokenBuckets
from gateway.services.orders import order_view
from gateway.services.ports.database import Database, Tx

log = logging.getLogger(__name__)
MISS_WINDOW_S = 60.0
GUESSING = "guessing"  # DeviceAlarm.kind of a code-guessing alarm (next to the fleet's "silent")
QUIET_S = 3600.0  # a guessing alarm clears itself after an hour without misses


class RateLimited(HexiaoError):
    code = "RATE_LIMITED"
    http_status = 429


class TypedGuard:
    """Why both keys: a caller is one person or token, a source is one address; a guesser with many
    tokens still comes from few addresses, and one shared kiosk address still has many people.

    Every typed redemption or check costs a token of the caller's and the source's bucket (`rate` per
    second, bursts of 4×; the source gets twice the caller's). Unknown or forged codes are misses:
    each is written to the audit (who, from where, what), and `guess_limit` misses in a minute from one
    caller or source raise the alarm and refuse its further codes until the minute has passed.
    """

    def __init__(self, rate: float = 10.0, guess_limit: int = 20) -> None:
        burst = max(1.0, rate * 4)
        self.callers = TokenBuckets(rate, burst)
        self.sources = TokenBuckets(rate * 2, burst * 2)
        self.misses = SlidingWindow(MISS_WINDOW_S)
        self.guess_limit = guess_limit
        self._lock = threading.Lock()

    def admit(self, caller: str, source: str, mono: float, *, costs: bool = True) -> None:
        """Raises RateLimited when `caller` or `source` may not try a code now. `costs`: a look-up
        that is not a redemption or check only needs the miss budget."""
        with self._lock:
            wait = max(self.misses.wait(k, self.guess_limit, mono) for k in (f"c:{caller}", f"s:{source}"))
            if wait > 0:
                raise RateLimited(
                    f"too many unknown codes; wait {int(wait) + 1} s", retry=True, wait_s=int(wait) + 1
                )
            if not costs:
                return
            if self.callers.allow(caller, mono):
                if self.sources.allow(source, mono):
                    return
                self.callers.give_back(caller)  # refused for its address: the caller's budget stays
        raise RateLimited("too many redemptions and checks; slow down", retry=True)

    def missed(
        self, db: Database, caller: str, source: str, what: str, code: str, *, counts: bool = True
    ) -> bool:
        """Record a miss; returns True when it raised the guessing alarm for `caller`. `counts` False
        (the local token): audited, but it spends no one's miss budget."""
        now, mono = time.time(), time.monotonic()
        n = 0
        if counts:
            with self._lock:
                n = max(self.misses.add(f"c:{caller}", mono), self.misses.add(f"s:{source}", mono))
        shown = "".join(ch if ch.isprintable() else "?" for ch in code[:40])
        with db.write() as tx:
            tx.audit.add(now, caller, "code_miss", reason=f"{what} from {source}: {shown}")
            return counts and n >= self.guess_limit and _raise_alarm(tx, "web-" + caller, now)


def _raise_alarm(tx: Tx, device: str, now: float) -> bool:
    """Open the device's guessing alarm (or note the latest miss on the one already open)."""
    if tx.alarms.seen(device[:32], GUESSING, now):
        return False
    tx.alarms.open(device[:32], GUESSING, now, now)
    log.warning("ALARM: %s tries many unknown codes (code guessing?)", device)
    return True


def looked_up(
    guard: TypedGuard,
    db: Database,
    caller: str,
    source: str,
    code: str,
    *,
    limited: bool = True,
    sees: Callable[[str | None], bool] | None = None,
) -> dict[str, Any]:
    """An order looked up by a typed code: a miss is a possible guess, counted and audited like one
    (`limited` False: audited only, for the local token). An order whose site the caller may not see
    (`sees` False) is answered and counted exactly like an unknown code: no existence oracle."""
    if limited:
        guard.admit(caller, source, time.monotonic(), costs=False)
    try:
        order = order_view(db, code)
        if sees is not None and not sees(order["site"]):
            raise NotFound(f"no order with code {code!r}", code=code)
        return order
    except NotFound:
        guard.missed(db, caller, source, "lookup", code, counts=limited)
        raise


@contextmanager
def creating(
    guard: TypedGuard,
    db: Database,
    caller: str,
    source: str,
    sees: Callable[[str | None], bool],
    *,
    limited: bool = True,
) -> Iterator[dict[str, str | None]]:
    """Around a creation or import of orders with chosen codes: yields the dict the service fills with
    codes it found already taken (code -> the order's site). "Already exists" tells that a code of a
    site the caller may not see exists, so each such code is a miss, and a paused caller may not try."""
    if limited:
        guard.admit(caller, source, time.monotonic(), costs=False)
    taken: dict[str, str | None] = {}
    try:
        yield taken
    finally:
        for code, site in taken.items():
            if not sees(site):
                guard.missed(db, caller, source, "create", code, counts=limited)
