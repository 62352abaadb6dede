"""A keyed look-up index for PINs: a sign-in checks one row's slow hash, not every row of the site.

Revision ID: 0008
Revises: 0007

`pin_index` is HMAC-SHA256(VAR_DIR/pin-key, site:PIN). Rows from before it have none; they are
found the slow way once and get their index at that sign-in (services/pins.py).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("verifier_pins") as b:
        b.add_column(sa.Column("pin_index", sa.String(64), nullable=True))
    op.create_index("ix_verifier_pins_pin_index", "verifier_pins", ["pin_index"])


def downgrade() -> None:
    op.drop_index("ix_verifier_pins_pin_index", table_name="verifier_pins")
    with op.batch_alter_table("verifier_pins") as b:
        b.drop_column("pin_index")
