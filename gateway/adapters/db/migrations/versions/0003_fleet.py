"""Device credentials and fleet state.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "device_credentials",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("device_id", sa.String(32), nullable=False, unique=True),
        sa.Column("secret_hash", sa.String(200), nullable=False),
        sa.Column("board", sa.String(32), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("issued_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
    )
    op.create_table(
        "device_commands",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("device_id", sa.String(32), nullable=False),
        sa.Column("cmd", sa.String(16), nullable=False),
        sa.Column("args", sa.JSON(), nullable=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("sent_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_device_commands_device", "device_commands", ["device_id"])
    op.create_table(
        "device_alarms",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("device_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("opened_at", sa.Float(), nullable=False),
        sa.Column("last_seen", sa.Float(), nullable=True),
        sa.Column("cleared_at", sa.Float(), nullable=True),
    )
    op.create_index("ix_device_alarms_device", "device_alarms", ["device_id"])


def downgrade() -> None:
    op.drop_index("ix_device_alarms_device", "device_alarms")
    op.drop_table("device_alarms")
    op.drop_index("ix_device_commands_device", "device_commands")
    op.drop_table("device_commands")
    op.drop_table("device_credentials")
