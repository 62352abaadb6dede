# The inbound webhook events repository: the SQL behind services.ports.webhook_events.WebhookEvents.
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.adapters.db.models import WebhookEvent


class SqlWebhookEvents:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def result(self, event_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            select(WebhookEvent.state, WebhookEvent.result).where(WebhookEvent.event_id == event_id)
        ).first()
        if row is None or row.state != "done":
            return None
        return dict(row.result or {})

    def get(self, event_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            select(
                WebhookEvent.type, WebhookEvent.state, WebhookEvent.result, WebhookEvent.received_at
            ).where(WebhookEvent.event_id == event_id)
        ).first()
        return None if row is None else dict(row._mapping)

    def add(self, event_id: str, type: str, code: str | None, now: float) -> bool:
        try:
            self.conn.execute(
                insert(WebhookEvent).values(
                    event_id=event_id, type=type, state="claimed", code=code, received_at=now
                )
            )
        except IntegrityError:  # PostgreSQL: a concurrent delivery inserted the same id first
            return False
        return True

    def reclaim(self, event_id: str, now: float) -> None:
        self.conn.execute(
            update(WebhookEvent)
            .where(WebhookEvent.event_id == event_id)
            .values(state="claimed", received_at=now, error=None)
        )

    def finish(
        self, event_id: str, state: str, result: dict[str, Any] | None, error: str | None, at: float
    ) -> None:
        self.conn.execute(
            update(WebhookEvent)
            .where(WebhookEvent.event_id == event_id)
            .values(state=state, result=result, error=error, finished_at=at)
        )
