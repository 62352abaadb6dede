"""PINs with a random salt per person: a slow salted hash replaces the per-site deterministic digest.

Revision ID: 0007
Revises: 0006

Existing digests cannot be re-salted without the PIN. They stay (`pin_digest`) until that verifier's
next successful sign-in, which stores the salted hash and clears the old digest (services/pins.py);
a manager who sets the PIN again clears it at once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("verifier_pins") as b:
        # Salted hashes are never equal for equal PINs: uniqueness per site is checked by the service.
        b.drop_constraint("uq_pin_site", type_="unique")
        b.alter_column("pin_digest", existing_type=sa.String(64), nullable=True)
        b.add_column(sa.Column("pin_hash", sa.String(200), nullable=True))


def downgrade() -> None:
    # Salted PINs cannot become deterministic digests again: they are dropped (set them anew).
    op.execute("DELETE FROM verifier_pins WHERE pin_digest IS NULL")
    with op.batch_alter_table("verifier_pins") as b:
        b.drop_column("pin_hash")
        b.alter_column("pin_digest", existing_type=sa.String(64), nullable=False)
        b.create_unique_constraint("uq_pin_site", ["site_id", "pin_digest"])
