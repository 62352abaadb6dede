# The orders repository: the SQL behind services.ports.orders.Orders (the hot path's is hotsql.py).
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, or_, select

from gateway.adapters.db.models import Order, Site

CHUNK = 500  # rows per INSERT: big imports in a few statements, each within the drivers' parameter limits


class SqlOrders:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def taken(self, codes: list[str]) -> dict[str, str | None]:
        rows = self.conn.execute(
            select(Order.code, Site.slug)
            .outerjoin(Site, Site.id == Order.site_id)
            .where(Order.code.in_(codes))
        )
        return {code: slug for code, slug in rows}

    def insert(self, rows: list[dict[str, Any]]) -> None:
        for i in range(0, len(rows), CHUNK):
            self.conn.execute(insert(Order), rows[i : i + CHUNK])

    def empty(self) -> bool:
        return self.conn.execute(select(Order.id).limit(1)).first() is None

    def find(self, code: str, short_code: str) -> dict[str, Any] | None:
        o = self.conn.execute(
            select(*Order.__table__.c).where(or_(Order.code == code, Order.short_code == short_code))
        ).first()
        if o is None:
            return None
        site = (
            self.conn.execute(select(Site.slug).where(Site.id == o.site_id)).scalar() if o.site_id else None
        )
        return {**o._mapping, "site_slug": site}
