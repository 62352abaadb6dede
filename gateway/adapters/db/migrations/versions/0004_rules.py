"""Redemption rules: kinds, packs, vouchers, validity masks, scope, entry/exit, annul/revert, refunds.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("sku", sa.String(64), nullable=False, unique=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=True),
        sa.Column("sale_from", sa.Float(), nullable=True),
        sa.Column("sale_until", sa.Float(), nullable=True),
        sa.Column("valid_from", sa.Float(), nullable=True),
        sa.Column("valid_until", sa.Float(), nullable=True),
        sa.Column("valid_days", sa.Integer(), nullable=True),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("redemption_id", sa.Integer(), nullable=True),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
    )
    op.create_table(
        "verifier_pins",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("user", sa.String(40), nullable=False),
        sa.Column("site_id", sa.Integer(), sa.ForeignKey("sites.id"), nullable=False),
        sa.Column("pin_digest", sa.String(64), nullable=False),
        sa.UniqueConstraint("site_id", "pin_digest", name="uq_pin_site"),
        sa.UniqueConstraint("user", "site_id", name="uq_pin_user_site"),
    )
    with op.batch_alter_table("devices") as b:
        b.add_column(sa.Column("user", sa.String(40), nullable=True))
    with op.batch_alter_table("sites") as b:
        b.add_column(sa.Column("auto_checkout", sa.String(5), nullable=True))
    with op.batch_alter_table("orders") as b:
        b.add_column(sa.Column("kind", sa.String(8), nullable=False, server_default="ticket"))
        b.add_column(sa.Column("short_code", sa.String(16), nullable=True))
        b.add_column(sa.Column("product_id", sa.Integer(), nullable=True))
        b.add_column(sa.Column("rules", sa.JSON(), nullable=True))
        b.add_column(sa.Column("day_key", sa.String(10), nullable=True))
        b.add_column(sa.Column("day_used", sa.Integer(), nullable=False, server_default="0"))
        b.add_column(sa.Column("inside", sa.Boolean(), nullable=False, server_default=sa.false()))
        b.add_column(sa.Column("inside_site_id", sa.Integer(), nullable=True))
        b.add_column(sa.Column("paid_at", sa.Float(), nullable=True))
        b.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="0"))
        b.create_unique_constraint("uq_orders_short_code", ["short_code"])
        b.create_foreign_key("fk_orders_product", "products", ["product_id"], ["id"], ondelete="SET NULL")
        b.create_check_constraint(
            "ck_orders_units", "used >= 0 AND refunded >= 0 AND used + refunded <= quantity"
        )
    with op.batch_alter_table("redemptions") as b:
        b.add_column(sa.Column("op", sa.String(8), nullable=False, server_default="redeem"))
        b.add_column(sa.Column("ref_id", sa.Integer(), nullable=True))
        b.add_column(sa.Column("undone", sa.Boolean(), nullable=False, server_default=sa.false()))
        b.add_column(sa.Column("user", sa.String(40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("redemptions") as b:
        for col in ("user", "undone", "ref_id", "op"):
            b.drop_column(col)
    with op.batch_alter_table("orders") as b:
        b.drop_constraint("ck_orders_units", type_="check")
        b.drop_constraint("fk_orders_product", type_="foreignkey")
        b.drop_constraint("uq_orders_short_code", type_="unique")
        for col in (
            "version",
            "paid_at",
            "inside_site_id",
            "inside",
            "day_used",
            "day_key",
            "rules",
            "product_id",
            "short_code",
            "kind",
        ):
            b.drop_column(col)
    with op.batch_alter_table("sites") as b:
        b.drop_column("auto_checkout")
    with op.batch_alter_table("devices") as b:
        b.drop_column("user")
    op.drop_table("verifier_pins")
    op.drop_table("audit")
    op.drop_table("products")
