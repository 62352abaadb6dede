# The products repository: the SQL behind services.ports.products.Products.
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, select, update

from gateway.adapters.db.models import Product
from gateway.adapters.db.repositories.unique import insert_unique
from gateway.domain.catalog import LiveProduct

_LIVE = Product.deleted.is_(False)
_ROW = (
    Product.id,
    Product.sku,
    Product.title,
    Product.kind,
    Product.quantity,
    Product.rules,
    Product.sale_from,
    Product.sale_until,
    Product.valid_from,
    Product.valid_until,
    Product.valid_days,
)


class SqlProducts:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(self, row: dict[str, Any]) -> bool:
        return insert_unique(self.conn, Product.sku, row["sku"], row)

    def change(self, sku: str, row: dict[str, Any]) -> bool:
        return self.conn.execute(update(Product).where(Product.sku == sku, _LIVE).values(**row)).rowcount > 0

    def retire(self, sku: str) -> bool:
        res = self.conn.execute(update(Product).where(Product.sku == sku, _LIVE).values(deleted=True))
        return res.rowcount > 0

    def listing(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(select(*Product.__table__.c).where(_LIVE).order_by(Product.sku)).all()
        return [dict(r._mapping) for r in rows]

    def rule_site_ids(self, sku: str) -> list[int] | None:
        rules = self.conn.execute(select(Product.rules).where(Product.sku == sku, _LIVE)).first()
        if rules is None:
            return None
        ids: list[int] = (rules[0] or {}).get("sites") or []
        return ids

    def live(self, skus: Iterable[str] | None = None) -> dict[str, LiveProduct]:
        q = select(*_ROW).where(_LIVE)
        if skus is not None:
            wanted = set(skus)
            if not wanted:
                return {}
            q = q.where(Product.sku.in_(wanted))
        return {r.sku: LiveProduct(*r) for r in self.conn.execute(q)}

    def validity(self, product_id: int) -> tuple[int | None, float | None] | None:
        p = self.conn.execute(
            select(Product.valid_days, Product.valid_until).where(Product.id == product_id)
        ).first()
        return None if p is None else (p.valid_days, p.valid_until)
