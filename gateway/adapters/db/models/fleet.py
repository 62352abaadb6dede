# Fleet tables: per-device MQTT credentials (hash only), the command log and inactivity alarms.
from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.adapters.db.models.ledger import Base


class DeviceCredential(Base):
    """A device's MQTT login. Only the `$7$` PBKDF2 hash is stored; the secret is shown once, at issue.

    Keyed by the device id string rather than a foreign key: the id is the MQTT username and topic
    segment, and a credential may be issued before the device row exists on an external database.
    """

    __tablename__ = "device_credentials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[str] = mapped_column(String(32), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(200))
    board: Mapped[str] = mapped_column(String(32), default="")
    generation: Mapped[int] = mapped_column(Integer, default=1)  # +1 at every rotation
    issued_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class DeviceCommand(Base):
    """Every command sent to a device (never any secret), for the audit trail."""

    __tablename__ = "device_commands"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[str] = mapped_column(String(32))
    cmd: Mapped[str] = mapped_column(String(16))
    args: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    source: Mapped[str] = mapped_column(String(64), default="api")
    sent_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (Index("ix_device_commands_device", "device_id"),)


class DeviceAlarm(Base):
    """An inactivity alarm: opened when a device has been silent too long, closed when it is heard again."""

    __tablename__ = "device_alarms"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16), default="silent")
    opened_at: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[float | None] = mapped_column(Float, nullable=True)
    cleared_at: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (Index("ix_device_alarms_device", "device_id"),)
