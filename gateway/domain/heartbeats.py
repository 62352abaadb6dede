# Device statuses waiting for their write: the latest state per device, and when writing them is due (pure).
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

A = TypeVar("A")  # what settles one message once it is durable (the broker acknowledgement)


@dataclass(slots=True)
class Held(Generic[A]):
    """What one device's statuses since the last write come to: exactly the row that writing them one
    after the other would leave (online from the last message, the document of the last online one)."""

    online: bool
    status: dict[str, Any] | None  # the latest "online" document (None: none came; the row keeps its own)
    seen: float  # wall-clock time of the last message (the row's last_seen)
    acks: list[A] = field(default_factory=list)


class StatusBuffer(Generic[A]):
    """Statuses coalesced per device until their write; `now` is a monotonic time everywhere.

    Why coalesce: a heartbeat only says "still here, this is my state"; a later one of the same device
    supersedes it, so N of them need one write. Memory is bounded by the fleet: one entry per device
    (keyed by its id), and the acknowledgements held are bounded by the broker's inflight window
    (it sends no more unacknowledged messages), which `max_held` keeps well below.

    When a write is due (`due`): never while scans are queued, unless statuses have waited `max_wait_s`
    (a steady stream of scans must not hold them off for ever) or `max_held` acknowledgements are held
    (held messages fill the broker's inflight window, and that window is shared with the scans); when
    the queue is idle, once the oldest has waited `interval_s` (so one write takes many statuses).
    """

    def __init__(self, interval_s: float = 0.25, max_wait_s: float = 2.0, max_held: int = 256) -> None:
        if not 0 <= interval_s <= max_wait_s or max_held < 1:
            raise ValueError("want 0 <= interval_s <= max_wait_s and max_held >= 1")
        self.interval_s = interval_s
        self.max_wait_s = max_wait_s
        self.max_held = max_held
        self._held: dict[str, Held[A]] = {}
        self._messages = 0  # readable messages held (each acknowledgement stands for one)
        self._oldest: float | None = None  # when the oldest held message came

    def __len__(self) -> int:
        """Devices waiting for their write."""
        return len(self._held)

    @property
    def messages(self) -> int:
        return self._messages

    def add(self, device: str, doc: dict[str, Any], ack: A, now: float, seen: float) -> None:
        """A readable status of `device` (the last message wins; an unreadable one never gets here)."""
        online = doc.get("state") == "online"
        h = self._held.get(device)
        if h is None:
            self._held[device] = h = Held(online, None, seen)
        h.online = online
        h.seen = seen
        if online:
            h.status = doc
        h.acks.append(ack)
        self._messages += 1
        if self._oldest is None:
            self._oldest = now

    def due(self, now: float, idle: bool) -> bool:
        """Whether to write the held statuses now (`idle`: no scan is queued)."""
        if self._oldest is None:
            return False
        waited = now - self._oldest
        if self._messages >= self.max_held or waited >= self.max_wait_s:
            return True
        return idle and waited >= self.interval_s

    def wait_s(self, now: float) -> float | None:
        """How long an idle service may sleep before a write is due (None: nothing held)."""
        if self._oldest is None:
            return None
        return max(0.0, self._oldest + self.interval_s - now)

    def take(self) -> dict[str, Held[A]]:
        """Everything held, device → its coalesced state; the buffer starts empty again."""
        held, self._held = self._held, {}
        self._messages = 0
        self._oldest = None
        return held
