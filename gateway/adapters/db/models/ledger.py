# The ledger's tables: sites, orders, devices and every redemption decision (SQLAlchemy 2 declarative).
from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Times are Unix seconds (UTC) stored as doubles: portable across SQLite and PostgreSQL, cheap on the
# hot path, and rendered in the site's time zone only at the edges.


class Base(DeclarativeBase):
    pass


class Site(Base):
    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    created_at: Mapped[float] = mapped_column(Float)
    auto_checkout: Mapped[str | None] = mapped_column(
        String(5), nullable=True
    )  # "HH:MM" local, migration 0004
    # The last moment automatic check-out was run up to (0006): survives restarts.
    checkout_cursor: Mapped[float | None] = mapped_column(Float, nullable=True)


class Order(Base):
    """One sellable line: `quantity` units of which `used` are redeemed and `refunded` are refunded."""

    __tablename__ = "orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(128), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    used: Mapped[int] = mapped_column(Integer, default=0)
    refunded: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | refunded | cancelled
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"), nullable=True)
    valid_from: Mapped[float | None] = mapped_column(Float, nullable=True)
    valid_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_used_gate: Mapped[str | None] = mapped_column(String(64), nullable=True)
    external_ref: Mapped[str | None] = mapped_column(String(120), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    # --- redemption rules (migration 0004) ---
    # ticket: units of admission; pack: multi-use (interval, per-day limit); value: a balance in cents
    kind: Mapped[str] = mapped_column(String(8), default="ticket")
    short_code: Mapped[str | None] = mapped_column(String(16), unique=True, nullable=True)
    product_id: Mapped[int | None] = mapped_column(
        ForeignKey("products.id", ondelete="SET NULL"), nullable=True
    )
    # A snapshot of the product's rules at sale time: editing or deleting the product never changes a
    # sold order. Keys: sites, gates, days, hours, min_interval_s, per_day, passback, reentry.
    rules: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    day_key: Mapped[str | None] = mapped_column(String(10), nullable=True)
    day_used: Mapped[int] = mapped_column(Integer, default=0)
    inside: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # units inside now (0006)
    inside_site_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    paid_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # Optimistic concurrency: every change bumps it; an update that finds another version lost a race.
    version: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        CheckConstraint(
            "used >= 0 AND refunded >= 0 AND used + refunded <= quantity", name="ck_orders_units"
        ),
    )


class Product(Base):
    """Catalog entry orders are sold from. Orders copy its rules; it may change or go away freely."""

    __tablename__ = "products"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(8), default="ticket")
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    rules: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    sale_from: Mapped[float | None] = mapped_column(Float, nullable=True)
    sale_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    valid_from: Mapped[float | None] = mapped_column(Float, nullable=True)
    valid_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    valid_days: Mapped[int | None] = mapped_column(Integer, nullable=True)  # use within N days of sale
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)


class VerifierPin(Base):
    """A verifier's PIN for signing in on a handheld at one site (so per-verifier stats work)."""

    __tablename__ = "verifier_pins"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user: Mapped[str] = mapped_column(String(40))
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id"))
    # A salted slow hash (domain/passwords.py format); PINs set before migration 0007 keep their old
    # per-site digest in `pin_digest` until their next successful sign-in rehashes them.
    pin_hash: Mapped[str | None] = mapped_column(String(200), nullable=True)
    pin_digest: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # HMAC of (site, PIN) under VAR_DIR/pin-key (0008): finds the one row to check with the slow hash.
    pin_index: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)

    __table_args__ = (UniqueConstraint("user", "site_id", name="uq_pin_user_site"),)


class Audit(Base):
    """Who changed what outside a plain redemption: annul, revert, refund, cancel."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[float] = mapped_column(Float)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    order_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    redemption_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    units: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(String(200), default="")


class Device(Base):
    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[str] = mapped_column(String(32), unique=True)
    site_id: Mapped[int | None] = mapped_column(ForeignKey("sites.id"), nullable=True)
    gate: Mapped[str] = mapped_column(String(64), default="")
    mode: Mapped[str] = mapped_column(String(16), default="handheld")
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen: Mapped[float | None] = mapped_column(Float, nullable=True)
    status: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    user: Mapped[str | None] = mapped_column(String(40), nullable=True)  # verifier signed in by PIN (0004)


class Redemption(Base):
    """Every decision, OK or denied. `idem_key` (`d:device/sid`, `u:user/request`, `s:action/id`) makes a
    retried request a no-op; `fingerprint` tells a retry from a different request reusing the id."""

    __tablename__ = "redemptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idem_key: Mapped[str] = mapped_column(String(80), unique=True)
    device: Mapped[str] = mapped_column(String(40))
    scan_id: Mapped[str] = mapped_column(String(40))
    site_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    gate: Mapped[str] = mapped_column(String(64), default="")
    order_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    code: Mapped[str] = mapped_column(String(128))
    qty: Mapped[int] = mapped_column(Integer)
    direction: Mapped[str] = mapped_column(String(4), default="in")
    ok: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String(24))
    device_time: Mapped[float | None] = mapped_column(Float, nullable=True)
    server_time: Mapped[float] = mapped_column(Float)
    verdict: Mapped[str] = mapped_column(Text)
    # --- migration 0004 ---
    op: Mapped[str] = mapped_column(String(8), default="redeem")  # redeem | exit | annul | revert
    ref_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the redemption annulled/reverted
    undone: Mapped[bool] = mapped_column(Boolean, default=False)  # this redemption was annulled/reverted
    user: Mapped[str | None] = mapped_column(String(40), nullable=True)  # verifier signed in, if any
    # --- migration 0006 ---
    # A hash of (op, code, qty, amt, dir, ref); `legacy:<dir>:<code>` for decisions from before 0006.
    fingerprint: Mapped[str | None] = mapped_column(String(200), nullable=True)
    inside_delta: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0"
    )  # units in (+) / out (-)
    day_key: Mapped[str | None] = mapped_column(String(10), nullable=True)  # site-local day of its units

    __table_args__ = (
        Index("ix_redemptions_server_time", "server_time"),
        Index("ix_redemptions_order", "order_id"),
        Index("ix_redemptions_code", "code"),
        Index("ix_redemptions_device", "device"),
    )
