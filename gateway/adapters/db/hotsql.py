# The order row mapping and the driver-level SQL for the four statements every scan runs (SQLite, PostgreSQL).
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import Connection

from gateway.adapters.db.models import Order
from gateway.domain.decisions import OrderView

# Why not SQLAlchemy Core here: measured on the benchmark machine, its execution path costs more CPU
# than SQLite's own work for these tiny statements (an UPDATE: 49 µs via Core, 23 µs via the driver;
# an INSERT of 20 rows: 613 µs vs 285 µs), and a one-scan batch pays it five times. Everything else
# in the gateway stays on Core/ORM; these strings must match gateway/adapters/db/models/ledger.py (the ledger tests
# run them on both databases).

# The one order row mapping: OrderView's fields are the columns read, by the Core selects (ORDER_COLS)
# and by the driver-level one alike, and every row becomes an OrderView by name (`order_view`).
ORDER_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(OrderView))
ORDER_COLS = tuple(getattr(Order, name) for name in ORDER_FIELDS)
_ORDER_SELECT = ", ".join(ORDER_FIELDS)
REDEMPTION_FIELDS = (
    "idem_key", "device", "scan_id", "site_id", "gate", "order_id", "code", "qty", "direction", "ok", "reason",
    "device_time", "server_time", "verdict", "op", "ref_id", "undone", "user", "fingerprint", "inside_delta",
    "day_key",
)  # fmt: skip


def _mark(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _quote(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def select_orders(conn: Connection, codes: list[str]) -> list[OrderView]:
    m = _mark(conn)
    sql = f"SELECT {_ORDER_SELECT} FROM orders WHERE code IN ({', '.join([m] * len(codes))})"
    return [order_view(r) for r in conn.exec_driver_sql(sql, tuple(codes))]


def order_view(row: Sequence[Any]) -> OrderView:
    """An order row (its columns in ORDER_FIELDS order, from Core or the driver) as an OrderView."""
    values = dict(zip(ORDER_FIELDS, row, strict=True))
    if isinstance(values["rules"], str):  # SQLite's driver hands JSON back as text; psycopg decodes it
        values["rules"] = json.loads(values["rules"])
    values["inside"] = int(values["inside"])
    return OrderView(**values)


def select_verdicts(conn: Connection, keys: list[str]) -> dict[str, tuple[str, str | None]]:
    m = _mark(conn)
    sql = f"SELECT idem_key, verdict, fingerprint FROM redemptions WHERE idem_key IN ({', '.join([m] * len(keys))})"
    return {k: (v, f) for k, v, f in conn.exec_driver_sql(sql, tuple(keys))}


def update_orders(conn: Connection, rows: list[tuple[Any, ...]]) -> int:
    """rows: (used, last_used_at, last_used_gate, day_key, day_used, inside, inside_site_id, new_version,
    id, expected_version); returns how many rows matched in all."""
    m = _mark(conn)
    sql = (
        f"UPDATE orders SET used = {m}, last_used_at = {m}, last_used_gate = {m}, day_key = {m}, day_used = {m}, "
        f"inside = {m}, inside_site_id = {m}, version = {m} WHERE id = {m} AND version = {m}"
    )
    if len(rows) == 1:
        return int(conn.exec_driver_sql(sql, rows[0]).rowcount)
    return int(conn.exec_driver_sql(sql, rows).rowcount)


def insert_redemptions(conn: Connection, rows: list[dict[str, Any]]) -> None:
    m = _mark(conn)
    cols = ", ".join(_quote(conn, c) for c in REDEMPTION_FIELDS)
    sql = f"INSERT INTO redemptions ({cols}) VALUES ({', '.join([m] * len(REDEMPTION_FIELDS))})"
    params = [tuple(r[c] for c in REDEMPTION_FIELDS) for r in rows]
    conn.exec_driver_sql(sql, params[0] if len(params) == 1 else params)
