# Over-the-air update tables: uploaded bundles (manifest and files, checked at upload) and each device's rollout.
from __future__ import annotations

from sqlalchemy import Float, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.adapters.db.models.ledger import Base


class OtaBundle(Base):
    """A firmware bundle as uploaded: the exact signed manifest bytes (devices check their own signature
    of these), who uploaded it and when."""

    __tablename__ = "ota_bundles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(32), unique=True)
    manifest: Mapped[bytes] = mapped_column(LargeBinary)
    files: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    uploaded_at: Mapped[float] = mapped_column(Float)
    uploaded_by: Mapped[str] = mapped_column(String(64))


class OtaFile(Base):
    """One file of a bundle (a compiled module of the hx package, a few KB): served in chunks."""

    __tablename__ = "ota_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(String(100))
    data: Mapped[bytes] = mapped_column(LargeBinary)

    __table_args__ = (Index("ix_ota_files_version_path", "version", "path", unique=True),)


class OtaRollout(Base):
    """A device's current update: the version rolled out to it, where it stands (domain/ota.py STATES),
    bytes done of total while downloading, and why it failed or was rolled back. One row per device; a
    new rollout replaces it (the audit log keeps the history)."""

    __tablename__ = "ota_rollouts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[str] = mapped_column(String(32), unique=True)
    version: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[float] = mapped_column(Float)
    created_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[float] = mapped_column(Float)
