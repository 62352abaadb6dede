# Inserting a row whose natural key (a site's slug, a product's SKU) must still be free.
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select


def insert_unique(conn: Connection, key: Any, value: str, row: dict[str, Any]) -> bool:
    """Insert `row` into the table of column `key` unless a row has `value` there already (then False).
    Call it in a write transaction: the check and the insert share it, so two creators cannot both pass."""
    if conn.execute(select(key).where(key == value)).first():
        return False
    conn.execute(insert(key.table).values(**row))
    return True
