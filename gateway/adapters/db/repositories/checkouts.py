# The check-outs repository: the SQL behind services.ports.checkouts.Checkouts.
from __future__ import annotations

from sqlalchemy import Connection, func, select, update

from gateway.adapters.db.models import Order, Site


class SqlCheckouts:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def scheduled(self) -> list[tuple[int, str | None, str, float | None, float]]:
        rows = self.conn.execute(
            select(Site.id, Site.auto_checkout, Site.timezone, Site.checkout_cursor, Site.created_at).where(
                Site.auto_checkout.is_not(None)
            )
        )
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def let_out(self, site_id: int) -> int:
        res = self.conn.execute(
            update(Order)
            .where(Order.inside > 0, Order.inside_site_id == site_id)
            .values(inside=0, inside_site_id=None, version=Order.version + 1)
        )
        return int(res.rowcount)

    def ran_until(self, site_id: int, now: float) -> None:
        self.conn.execute(update(Site).where(Site.id == site_id).values(checkout_cursor=now))

    def inside(self) -> dict[str, int]:
        rows = self.conn.execute(
            select(Site.slug, func.sum(Order.inside))
            .select_from(Order)
            .join(Site, Site.id == Order.inside_site_id)
            .where(Order.inside > 0)
            .group_by(Site.slug)
        )
        return {slug: int(n) for slug, n in rows}
