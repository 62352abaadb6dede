# Webhook tables: inbound events seen (replay protection) and per-receiver outbound delivery cursors.
from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.adapters.db.models.ledger import Base


class WebhookEvent(Base):
    """One inbound event id. A row in state `done` makes every later delivery of that id a no-op.

    `state` is `claimed` while the event is being applied (a crash leaves it claimed; the next delivery
    checks whether the change landed before applying it again), `done` once applied, `failed` when it was
    refused (nothing changed, so a later delivery of the same id is tried again).
    """

    __tablename__ = "webhook_events"

    event_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(8))  # claimed | done | failed
    code: Mapped[str | None] = mapped_column(String(128), nullable=True)  # the order it acts on
    received_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class WebhookCursor(Base):
    """How far one outbound receiver has got: every redemption id <= `last_id` was delivered (or skipped)."""

    __tablename__ = "webhook_cursors"

    target: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 of the URL, hex, 64 chars
    url: Mapped[str] = mapped_column(String(500))
    last_id: Mapped[int] = mapped_column(Integer)
    delivered: Mapped[int] = mapped_column(Integer, default=0)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # consecutive, for the current event
    last_error: Mapped[str | None] = mapped_column(String(300), nullable=True)
    updated_at: Mapped[float] = mapped_column(Float)
