# The scans-per-device limit refuses in the device's order: a later scan never overtakes a refused one.
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain.ratelimit import InOrderBuckets, TokenBuckets


class PlainBuckets:
    """The limit as it was (a plain token bucket), for the example that shows what the order rule fixes."""

    def __init__(self, rate: float) -> None:
        self.b = TokenBuckets(rate)

    def allow(self, key: str, ident: str, now: float) -> bool:
        return self.b.allow(key, now)


def upload(limit: InOrderBuckets | PlainBuckets, n: int, window: int, gaps: list[float]) -> list[int]:
    """A device drains a backlog of `n` scans like the firmware's outbox does: its `window` oldest
    waiting scans are in flight, sent oldest first; a refused one (transient) is backed off 10 s with
    whatever else is in flight, an allowed one leaves and the next waiting one moves into the window.
    Returns the scans in the order the gateway let them through."""
    waiting = list(range(n))
    not_before = [0.0] * n  # when the device sends each again
    decided: list[int] = []
    now = 0.0
    for gap in gaps:
        now += gap
        for scan in list(waiting[:window]):
            if not_before[scan] > now:
                continue
            if limit.allow("dev", f"s{scan}", now):
                waiting.remove(scan)
                decided.append(scan)
            else:
                not_before[scan] = now + 10.0
    return decided


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    n=st.integers(5, 60),
    window=st.integers(1, 6),
    rate=st.sampled_from([1.0, 5.0, 20.0]),
    gaps=st.lists(st.floats(0.0, 3.0), min_size=20, max_size=200),
)
def test_a_backlog_is_let_through_in_scan_order(n: int, window: int, rate: float, gaps: list[float]) -> None:
    decided = upload(InOrderBuckets(rate), n, window, gaps)
    assert decided == sorted(decided)
    assert decided == list(range(len(decided)))  # no scan skipped either


def test_the_plain_bucket_let_a_later_scan_overtake_a_refused_one() -> None:
    # Burst 2 at 1/s, 4 in flight: 0 and 1 pass, 2 and 3 are refused and backed off 10 s; scan 4
    # moves into the window and takes the token that came back meanwhile.
    gaps = [0.0, 1.0, 1.0, 10.0, 10.0, 10.0]
    assert upload(PlainBuckets(1.0), 6, 4, gaps) == [0, 1, 4, 2, 3, 5]
    assert upload(InOrderBuckets(1.0), 6, 4, gaps) == [0, 1, 2, 3, 4, 5]


def test_a_device_that_never_resends_the_refused_scan_is_let_go_after_the_hold() -> None:
    limit = InOrderBuckets(1.0, burst=1, hold_s=90)
    assert limit.allow("dev", "a", 0.0)
    assert not limit.allow("dev", "b", 0.1)  # refused: the device is held on "b"
    assert not limit.allow("dev", "c", 50.0)  # a token is back, but "c" may not overtake "b"
    assert limit.allow("dev", "c", 91.0)  # "b" never came back (the device lost it): held no longer
    assert limit.allow("other", "x", 0.2)  # another device is never held by this one


def test_the_refused_scan_coming_back_releases_the_hold() -> None:
    limit = InOrderBuckets(1.0, burst=1)
    assert limit.allow("dev", "a", 0.0)
    assert not limit.allow("dev", "b", 0.1)
    assert not limit.allow("dev", "b", 0.5)  # back too early: still no token, still held on "b"
    assert not limit.allow("dev", "c", 0.6)  # waits behind "b"
    assert limit.allow("dev", "b", 2.0)
    assert not limit.allow("dev", "d", 2.05)  # "c" was refused first: "d" waits behind it
    assert not limit.allow("dev", "c", 2.1)  # its turn, but no token yet
    assert limit.allow("dev", "c", 3.5)
    assert not limit.allow("dev", "e", 3.6)  # "d" is still owed its turn
    assert limit.allow("dev", "d", 4.6)
    assert limit.allow("dev", "e", 5.7)  # nobody held any more: the plain bucket again


def test_rate_zero_never_refuses() -> None:
    limit = InOrderBuckets(0)
    assert all(limit.allow("dev", f"s{i}", 0.0) for i in range(1000))


def test_held_scans_let_through_and_returned_keep_their_order() -> None:
    """Two held scans let through into one batch that is not committed come back to the hold's head
    in their order (the batch returns them last first), with their tokens."""
    limit = InOrderBuckets(1.0, burst=2.0)
    assert limit.allow("d", "s0", 0.0) and limit.allow("d", "s1", 0.0)
    assert not limit.allow("d", "a", 0.0) and not limit.allow("d", "b", 0.0)
    assert limit.allow("d", "a", 2.0) and limit.allow("d", "b", 2.0)  # both in one batch ...
    limit.returned("d", "b", 2.0)  # ... that fails
    limit.returned("d", "a", 2.0)
    assert not limit.allow("d", "b", 2.0)  # sent again first, it waits for its elder
    assert limit.allow("d", "a", 2.0) and limit.allow("d", "b", 2.0)


def test_a_scan_let_through_without_a_hold_and_returned_holds_nobody() -> None:
    limit = InOrderBuckets(1.0, burst=1.0)
    assert limit.allow("d", "a", 0.0)
    limit.returned("d", "a", 0.0)  # its token comes back; no hold was waiting behind it
    assert limit.allow("d", "b", 0.0)
