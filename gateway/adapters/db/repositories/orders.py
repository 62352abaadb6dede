# The orders repository: the SQL behind services.ports.orders.Orders (the hot path's is hotsql.py).
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

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

    def add(self, row: dict[str, Any]) -> bool:
        try:
            self.conn.execute(insert(Order).values(**row))
        except IntegrityError:  # PostgreSQL: a parallel writer inserted the same code first
            return False
        return True

    def codes_of(self, external_ref: str) -> list[str]:
        rows = self.conn.execute(
            select(Order.code).where(Order.external_ref == external_ref).order_by(Order.id)
        )
        return [r[0] for r in rows]

    def lines(self, codes: list[str]) -> dict[str, dict[str, Any]]:
        rows = self.conn.execute(
            select(Order.code, Order.title, Order.quantity, Order.status).where(Order.code.in_(codes))
        )
        return {r.code: {"title": r.title, "quantity": r.quantity, "status": r.status} for r in rows}

    def state(self, code: str) -> dict[str, Any] | None:
        o = self.conn.execute(
            select(Order.id, Order.status, Order.product_id, Order.valid_until, Order.version).where(
                Order.code == code
            )
        ).first()
        return None if o is None else dict(o._mapping)

    def change(self, order_id: int, version: int, values: dict[str, Any]) -> bool:
        done = self.conn.execute(
            update(Order).where(Order.id == order_id, Order.version == version).values(**values)
        ).rowcount
        return bool(done == 1)

    def open_codes(self, prefix: str) -> list[str]:
        return list(
            self.conn.execute(
                select(Order.code).where(
                    Order.code.startswith(prefix, autoescape=True), Order.status != "cancelled"
                )
            )
            .scalars()
            .all()
        )
