# Inserting a row whose natural key (a site's slug, a product's SKU) must still be free.
from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, insert, select

from gateway.adapters.db.engine import writer
from gateway.domain.errors import Conflict


def insert_unique(engine: Engine, key: Any, value: str, row: dict[str, Any], taken: Conflict) -> None:
    """Insert `row` into the table of column `key` unless a row has `value` there already (then `taken`).
    The check and the insert share one write transaction, so two creators cannot both pass the check."""
    with engine.connect() as c, writer(c).begin():
        if c.execute(select(key).where(key == value)).first():
            raise taken
        c.execute(insert(key.table).values(**row))
