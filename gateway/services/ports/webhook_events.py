# The inbound webhook events port: one row per event id, claimed while applied, done or failed after.
from __future__ import annotations

from typing import Any, Protocol


class WebhookEvents(Protocol):
    def result(self, event_id: str) -> dict[str, Any] | None:
        """The result of the event if it was applied (state `done`), else None."""
        ...

    def get(self, event_id: str) -> dict[str, Any] | None:
        """The event's `type`, `state`, `result` and `received_at`; None when the id is new."""
        ...

    def add(self, event_id: str, type: str, code: str | None, now: float) -> bool:
        """Record the new event as claimed at `now`. False: a concurrent delivery recorded the same id
        first (PostgreSQL; the transaction must then be given up)."""
        ...

    def reclaim(self, event_id: str, now: float) -> None:
        """Claim a known event again at `now` (its earlier error cleared)."""
        ...

    def finish(
        self, event_id: str, state: str, result: dict[str, Any] | None, error: str | None, at: float
    ) -> None:
        """Set the event's final `state` (done | failed) with its result or error, finished at `at`."""
        ...
