# The status buffer's policy: the latest state per device, and when writing it is due (pure, given `now`).
from __future__ import annotations

from typing import Any

import pytest

from gateway.domain.heartbeats import StatusBuffer


def online(fw: str) -> dict[str, Any]:
    return {"v": 1, "state": "online", "fw": fw}


OFFLINE = {"v": 1, "state": "offline"}


def test_many_statuses_of_one_device_come_to_one_entry_with_the_last_document() -> None:
    b: StatusBuffer[str] = StatusBuffer()
    for i in range(5):
        b.add("d1", online(f"1.{i}"), f"ack{i}", now=10.0 + i, seen=100.0 + i)
    b.add("d2", online("2.0"), "ackB", now=20.0, seen=200.0)
    assert len(b) == 2 and b.messages == 6
    held = b.take()
    assert list(held) == ["d1", "d2"]
    d1 = held["d1"]
    assert (d1.online, d1.status, d1.seen) == (True, online("1.4"), 104.0)
    assert d1.acks == ["ack0", "ack1", "ack2", "ack3", "ack4"]  # every message is settled by the one write
    assert len(b) == 0 and b.messages == 0 and b.take() == {}


def test_online_then_offline_leaves_what_writing_them_in_turn_would() -> None:
    b: StatusBuffer[int] = StatusBuffer()
    b.add("d1", online("1.0"), 1, now=0.0, seen=50.0)
    b.add("d1", OFFLINE, 2, now=0.1, seen=51.0)
    h = b.take()["d1"]
    # Offline wins; the row still gets the document the device sent while it was online.
    assert (h.online, h.status, h.seen, h.acks) == (False, online("1.0"), 51.0, [1, 2])


def test_offline_then_online_is_online_with_the_new_document() -> None:
    b: StatusBuffer[int] = StatusBuffer()
    b.add("d1", online("1.0"), 1, now=0.0, seen=1.0)
    b.add("d1", OFFLINE, 2, now=0.0, seen=2.0)
    b.add("d1", online("1.1"), 3, now=0.0, seen=3.0)
    h = b.take()["d1"]
    assert (h.online, h.status, h.seen) == (True, online("1.1"), 3.0)


def test_only_offline_keeps_the_stored_document() -> None:
    b: StatusBuffer[int] = StatusBuffer()
    b.add("d1", OFFLINE, 1, now=0.0, seen=1.0)
    h = b.take()["d1"]
    assert (h.online, h.status) == (False, None)  # None: the row's document is left as it is


def test_never_due_while_scans_are_queued_until_the_longest_wait() -> None:
    b: StatusBuffer[int] = StatusBuffer(interval_s=0.25, max_wait_s=2.0, max_held=100)
    assert not b.due(1000.0, idle=True)  # nothing held
    assert b.wait_s(1000.0) is None
    b.add("d1", OFFLINE, 1, now=10.0, seen=0.0)
    b.add("d2", OFFLINE, 2, now=11.0, seen=0.0)  # the oldest message decides, not the newest
    assert not b.due(10.1, idle=True)  # idle, but a write now would take too few statuses
    assert b.wait_s(10.1) == pytest.approx(0.15)
    assert b.due(10.25, idle=True)
    assert not b.due(11.9, idle=False)  # scans are queued: they go first
    assert b.due(12.0, idle=False)  # ... but not for ever
    assert b.wait_s(13.0) == 0.0
    b.take()
    assert not b.due(99.0, idle=False) and not b.due(99.0, idle=True)


def test_due_once_the_held_acknowledgements_reach_the_bound() -> None:
    # They occupy the broker's inflight window, which scans need too: a flood is written however busy.
    b: StatusBuffer[int] = StatusBuffer(interval_s=1.0, max_wait_s=5.0, max_held=3)
    b.add("d1", OFFLINE, 1, now=0.0, seen=0.0)
    b.add("d1", OFFLINE, 2, now=0.0, seen=0.0)
    assert not b.due(0.0, idle=False)
    b.add("d1", OFFLINE, 3, now=0.0, seen=0.0)  # one device: the bound counts messages, not devices
    assert len(b) == 1 and b.due(0.0, idle=False)


def test_entries_are_bounded_by_the_devices() -> None:
    b: StatusBuffer[None] = StatusBuffer(max_held=10**9)
    for i in range(10_000):
        b.add(f"d{i % 50}", online(str(i)), None, now=0.0, seen=float(i))
    assert len(b) == 50
    assert b.take()["d49"].status == online("9999")


@pytest.mark.parametrize(("interval", "max_wait", "max_held"), [(-1.0, 2.0, 1), (3.0, 2.0, 1), (0.1, 2.0, 0)])
def test_bad_settings_are_refused(interval: float, max_wait: float, max_held: int) -> None:
    with pytest.raises(ValueError, match="interval_s"):
        StatusBuffer(interval, max_wait, max_held)
