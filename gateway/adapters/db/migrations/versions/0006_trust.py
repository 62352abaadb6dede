"""Trustworthy redemption: request fingerprints, key namespaces, units inside, exact undo, check-out cursor.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # `inside` was one flag per order; it becomes the number of units inside (a group of five).
    with op.batch_alter_table("orders") as b:
        b.alter_column("inside", existing_type=sa.Boolean(), server_default=None)
    with op.batch_alter_table("orders") as b:
        b.alter_column(
            "inside",
            existing_type=sa.Boolean(),
            type_=sa.Integer(),
            existing_nullable=False,
            postgresql_using="inside::int",
        )
    with op.batch_alter_table("orders") as b:
        b.alter_column("inside", existing_type=sa.Integer(), server_default="0")
    with op.batch_alter_table("redemptions") as b:
        # What the request asked (op, code, qty, amt, dir, ref), hashed: a reused id with another
        # request is refused instead of replaying the stored verdict.
        b.add_column(sa.Column("fingerprint", sa.String(200), nullable=True))
        # Units this decision moved inside (+) or let out (-), and the site-local day its units count on:
        # an undo takes back exactly what the redemption changed.
        b.add_column(sa.Column("inside_delta", sa.Integer(), nullable=False, server_default="0"))
        b.add_column(sa.Column("day_key", sa.String(10), nullable=True))
        b.create_index("ix_redemptions_order", ["order_id"])
    with op.batch_alter_table("sites") as b:
        # Automatic check-out resumes from here after a restart instead of from the process start.
        b.add_column(sa.Column("checkout_cursor", sa.Float(), nullable=True))
    # Separate key spaces: devices `d:`, people `u:`, system actions `s:` — they can no longer collide.
    op.execute(
        "UPDATE redemptions SET idem_key = 's:' || idem_key WHERE op = 'revert' AND idem_key LIKE 'revert/%'"
    )
    op.execute(
        "UPDATE redemptions SET idem_key = 'u:' || substr(idem_key, 5) "
        "WHERE device LIKE 'web-%' AND \"user\" IS NOT NULL AND idem_key LIKE 'web-%' AND op <> 'revert'"
    )
    op.execute(
        "UPDATE redemptions SET idem_key = 'd:' || idem_key "
        "WHERE idem_key NOT LIKE 's:%' AND idem_key NOT LIKE 'u:%'"
    )
    # Decisions from before fingerprints: what they asked is only partly known (the order's code and
    # the direction). A retry asking for that code the same way still gets its stored verdict across
    # the upgrade; a reused id asking anything else is refused (gateway/ledger.py, legacy_fingerprint).
    op.execute(
        "UPDATE redemptions SET fingerprint = 'legacy:' || direction || ':' || code "
        "WHERE fingerprint IS NULL AND op IN ('redeem', 'exit')"
    )
    # Orders inside before the upgrade: their latest successful entry is the one whose person is in,
    # so undoing it lets that person out (later rows record what they move themselves).
    op.execute(
        "UPDATE redemptions SET inside_delta = 1 WHERE id IN ("
        " SELECT max(r.id) FROM redemptions r JOIN orders o ON o.id = r.order_id"
        " WHERE o.inside > 0 AND r.op = 'redeem' AND r.direction = 'in' AND r.ok = true"
        " AND r.undone = false GROUP BY r.order_id)"
    )


def downgrade() -> None:
    op.execute("UPDATE redemptions SET idem_key = substr(idem_key, 3) WHERE idem_key LIKE 'd:%'")
    op.execute("UPDATE redemptions SET idem_key = 'web-' || substr(idem_key, 3) WHERE idem_key LIKE 'u:%'")
    op.execute("UPDATE redemptions SET idem_key = substr(idem_key, 3) WHERE idem_key LIKE 's:%'")
    with op.batch_alter_table("sites") as b:
        b.drop_column("checkout_cursor")
    with op.batch_alter_table("redemptions") as b:
        b.drop_index("ix_redemptions_order")
        for col in ("day_key", "inside_delta", "fingerprint"):
            b.drop_column(col)
    with op.batch_alter_table("orders") as b:
        b.alter_column("inside", existing_type=sa.Integer(), server_default=None)
    with op.batch_alter_table("orders") as b:
        b.alter_column(
            "inside",
            existing_type=sa.Integer(),
            type_=sa.Boolean(),
            existing_nullable=False,
            postgresql_using="inside > 0",
        )
