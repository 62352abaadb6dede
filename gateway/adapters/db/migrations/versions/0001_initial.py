"""Initial ledger: sites, orders, devices, redemptions.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("slug", sa.String(32), nullable=False, unique=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(128), nullable=False, unique=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.Column("refunded", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("site_id", sa.Integer(), sa.ForeignKey("sites.id"), nullable=True),
        sa.Column("valid_from", sa.Float(), nullable=True),
        sa.Column("valid_until", sa.Float(), nullable=True),
        sa.Column("last_used_at", sa.Float(), nullable=True),
        sa.Column("last_used_gate", sa.String(64), nullable=True),
        sa.Column("external_ref", sa.String(120), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("device_id", sa.String(32), nullable=False, unique=True),
        sa.Column("site_id", sa.Integer(), sa.ForeignKey("sites.id"), nullable=True),
        sa.Column("gate", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("last_seen", sa.Float(), nullable=True),
        sa.Column("status", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "redemptions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("idem_key", sa.String(80), nullable=False, unique=True),
        sa.Column("device", sa.String(40), nullable=False),
        sa.Column("scan_id", sa.String(40), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=True),
        sa.Column("gate", sa.String(64), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("code", sa.String(128), nullable=False),
        sa.Column("qty", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(4), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(24), nullable=False),
        sa.Column("device_time", sa.Float(), nullable=True),
        sa.Column("server_time", sa.Float(), nullable=False),
        sa.Column("verdict", sa.Text(), nullable=False),
    )
    op.create_index("ix_redemptions_server_time", "redemptions", ["server_time"])
    op.create_index("ix_redemptions_code", "redemptions", ["code"])
    op.create_index("ix_redemptions_device", "redemptions", ["device"])


def downgrade() -> None:
    op.drop_table("redemptions")
    op.drop_table("devices")
    op.drop_table("orders")
    op.drop_table("sites")
