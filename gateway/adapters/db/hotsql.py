# The order row mapping and the driver-level SQL for the four statements every scan runs (SQLite, PostgreSQL).
from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from gateway.adapters.db.models import Order
from gateway.domain.decisions import OrderView
from gateway.domain.order_state import Use

# Why not SQLAlchemy Core here: measured on the benchmark machine, its execution path costs more CPU
# than SQLite's own work for these tiny statements (an UPDATE: 49 µs via Core, 23 µs via the driver;
# an INSERT of 20 rows: 613 µs vs 285 µs), and a one-scan batch pays it five times. On SQLite, inside the
# writer's transaction, they skip exec_driver_sql too and go to the pysqlite connection (its result
# set-up per column cost more than the statements; errors are still raised as SQLAlchemy's). Everything else
# in the gateway stays on Core/ORM; these strings must match gateway/adapters/db/models/ledger.py (the ledger tests
# run them on both databases).

# The one order row mapping: OrderView's fields are the columns read, by the Core selects (ORDER_COLS)
# and by the driver-level one alike, and every row becomes an OrderView by name (`order_view`).
ORDER_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(OrderView))
ORDER_COLS = tuple(getattr(Order, name) for name in ORDER_FIELDS)
_ORDER_SELECT = ", ".join(ORDER_FIELDS)
_RULES, _INSIDE = ORDER_FIELDS.index("rules"), ORDER_FIELDS.index("inside")
REDEMPTION_FIELDS = (
    "idem_key", "device", "scan_id", "site_id", "gate", "order_id", "code", "qty", "direction", "ok", "reason",
    "device_time", "server_time", "verdict", "op", "ref_id", "undone", "user", "fingerprint", "inside_delta",
    "day_key",
)  # fmt: skip


def _mark(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def _quote(conn: Connection, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def _sqlite_driver(conn: Connection) -> sqlite3.Connection | None:
    """The pysqlite connection under `conn` when the statement may go straight to it: SQLite, inside
    a transaction SQLAlchemy began (so BEGIN IMMEDIATE has run). Otherwise None: use exec_driver_sql.

    Why: on a one-scan batch SQLAlchemy's execution path (result metadata per column, events,
    context objects) cost several times SQLite's own work for these statements (measured: ~60 µs
    per statement against ~8 µs for the driver's), and at 500 scans/s every scan pays it four times.
    """
    if conn.dialect.name != "sqlite" or not conn.in_transaction():
        return None
    driver: sqlite3.Connection = conn.connection.dbapi_connection  # type: ignore[assignment]
    return driver


def driver_error(sql: str, params: Any, err: sqlite3.Error, conn: Connection) -> BaseException:
    """A driver error as SQLAlchemy raises it from exec_driver_sql (OperationalError, IntegrityError…),
    so the callers' retry and failure rules (the writer's `retryable`, the ledger's `failures`) hold."""
    return DBAPIError.instance(sql, params, err, sqlite3.Error, dialect=conn.dialect)


def _rows(conn: Connection, sql: str, params: Sequence[Any]) -> Sequence[Sequence[Any]]:
    driver = _sqlite_driver(conn)
    if driver is None:
        return conn.exec_driver_sql(sql, tuple(params)).all()
    try:
        return driver.execute(sql, params).fetchall()
    except sqlite3.Error as err:
        raise driver_error(sql, params, err, conn) from err


def _write(conn: Connection, sql: str, params: Any, many: bool) -> int:
    """Run a write (one parameter tuple, or a list of them when `many`); the rows it matched."""
    driver = _sqlite_driver(conn)
    if driver is None:
        return int(conn.exec_driver_sql(sql, params).rowcount)
    try:
        cur = driver.executemany(sql, params) if many else driver.execute(sql, params)
        return int(cur.rowcount)
    except sqlite3.Error as err:
        raise driver_error(sql, params, err, conn) from err


@functools.cache
def _in_list(m: str, n: int) -> str:
    return ", ".join([m] * n)


def select_orders(conn: Connection, codes: list[str]) -> list[OrderView]:
    m = _mark(conn)
    sql = f"SELECT {_ORDER_SELECT} FROM orders WHERE code IN ({_in_list(m, len(codes))})"
    if conn.dialect.name == "postgresql":
        # Several workers: every batch takes its orders' row locks up front and in one order (by id),
        # so two batches never wait on each other in a cycle (a deadlock costs a second and a redo).
        # The conditional updates still guard each decision; SQLite's writer lock orders everything.
        sql += " ORDER BY id FOR NO KEY UPDATE"
    return [order_view(r) for r in _rows(conn, sql, codes)]


def select_orders_by_id(conn: Connection, ids: list[int]) -> list[OrderView]:
    m = _mark(conn)
    sql = f"SELECT {_ORDER_SELECT} FROM orders WHERE id IN ({_in_list(m, len(ids))})"
    return [order_view(r) for r in _rows(conn, sql, ids)]


def order_view(row: Sequence[Any]) -> OrderView:
    """An order row (its columns in ORDER_FIELDS order, from Core or the driver) as an OrderView."""
    values = list(row)  # positional: ORDER_FIELDS is OrderView's fields in order
    if len(values) != len(ORDER_FIELDS):
        raise ValueError(f"an order row has {len(values)} columns, not {len(ORDER_FIELDS)}")
    if isinstance(values[_RULES], str):  # SQLite's driver hands JSON back as text; psycopg decodes it
        values[_RULES] = json.loads(values[_RULES])
    values[_INSIDE] = int(values[_INSIDE])
    return OrderView(*values)


def select_verdicts(conn: Connection, keys: list[str]) -> dict[str, tuple[str, str | None]]:
    m = _mark(conn)
    sql = (
        f"SELECT idem_key, verdict, fingerprint FROM redemptions WHERE idem_key IN ({_in_list(m, len(keys))})"
    )
    return {k: (v, f) for k, v, f in _rows(conn, sql, keys)}


def update_orders(conn: Connection, rows: list[tuple[Any, ...]]) -> int:
    """rows: (used, last_used_at, last_used_gate, day_key, day_used, inside, inside_site_id, new_version,
    id, expected_version); returns how many rows matched in all."""
    m = _mark(conn)
    sql = (
        f"UPDATE orders SET used = {m}, last_used_at = {m}, last_used_gate = {m}, day_key = {m}, day_used = {m}, "
        f"inside = {m}, inside_site_id = {m}, version = {m} WHERE id = {m} AND version = {m}"
    )
    if len(rows) == 1:
        return _write(conn, sql, rows[0], many=False)
    return _write(conn, sql, rows, many=True)


def apply_use(conn: Connection, u: Use, expected: OrderView) -> OrderView | None:
    """Apply a decided change with one conditional UPDATE; the order after it, or None when a guard
    no longer holds (another writer changed the order since it was read: decide again).

    On PostgreSQL the UPDATE waits for a concurrent writer of the row and re-checks its WHERE on the
    committed row, so the guard is atomic, and the row comes back (RETURNING) with what others
    committed meanwhile. SQLite's writer holds the database lock from BEGIN IMMEDIATE on, so the row
    is the one we read: the order after is `expected`, and the statement goes straight to the driver
    (SQLAlchemy's result handling cost more than the UPDATE itself, measured).
    """
    shape = (u.consume > 0, (u.inside > 0) - (u.inside < 0), u.active, u.per_day is not None,
             u.min_gap is not None, u.reentry, u.charged)  # fmt: skip
    params: list[Any] = []
    if u.consume:
        params += [u.consume, u.now, u.gate, u.today, u.consume, u.today]
    if u.inside > 0:
        params += [u.inside, u.site_id]
    elif u.inside < 0:
        params += [-u.inside, -u.inside]
    params.append(u.order_id)
    if u.consume:
        params += [u.consume, u.today]
    if u.inside < 0:
        params.append(-u.inside)
    if u.per_day is not None:
        params += [u.today, u.consume, u.per_day]
    if u.min_gap is not None:
        params += [u.now, u.min_gap]
    if u.reentry or u.charged:
        params += [u.today, u.inside]
    if conn.dialect.name == "sqlite":
        return expected if _write(conn, _use_sql("?", *shape), params, many=False) == 1 else None
    row = conn.exec_driver_sql(_use_sql("%s", *shape) + f" RETURNING {_ORDER_SELECT}", tuple(params)).first()
    return None if row is None else order_view(row)


@functools.cache
def _use_sql(
    m: str, consume: bool, inside: int, active: bool, per_day: bool, gap: bool, reentry: bool, charged: bool
) -> str:
    """The conditional UPDATE for one shape of use; parameters in the order apply_use lists them."""
    sets: list[str] = []
    where = [f"id = {m}"]
    if consume:
        sets += [
            f"used = used + {m}",
            f"last_used_at = {m}",
            f"last_used_gate = {m}",
            f"day_used = (CASE WHEN day_key = {m} THEN day_used ELSE 0 END) + {m}",
            f"day_key = {m}",
        ]
        where.append(f"used + refunded + {m} <= quantity")
        # The day counter never goes back (validity.counting_day): another writer moved it to a later
        # day since our read, so decide again on that day rather than reset its count.
        where.append(f"(day_key IS NULL OR day_key <= {m})")
    if inside > 0:
        sets += [f"inside = inside + {m}", f"inside_site_id = {m}"]
    elif inside < 0:
        # An exit lets out the units it counted: they must still be inside, so what it records is exact.
        sets += [f"inside = inside - {m}", f"inside_site_id = CASE WHEN inside > {m} THEN inside_site_id END"]
        where.append(f"inside >= {m}")
    if active:
        where.append("status = 'active'")
    if per_day:
        where.append(f"(CASE WHEN day_key = {m} THEN day_used ELSE 0 END) + {m} <= {m}")
    if gap:
        # The same arithmetic as the rule (`now - last_used_at < gap` refuses), so both agree at the edge.
        where.append(f"(last_used_at IS NULL OR {m} - last_used_at >= {m})")
    if reentry:
        where.append(f"(CASE WHEN day_key = {m} THEN day_used ELSE 0 END) - inside >= {m}")
    if charged:
        # A unit was charged because too few of today's had left to come back free: still so.
        where.append(f"(CASE WHEN day_key = {m} THEN day_used ELSE 0 END) - inside < {m}")
    sets.append("version = version + 1")
    return f"UPDATE orders SET {', '.join(sets)} WHERE {' AND '.join(where)}"


_INSERT_SQL: dict[str, str] = {}  # dialect name → the INSERT, its column names quoted once


def insert_redemptions(conn: Connection, rows: list[dict[str, Any]]) -> None:
    sql = _INSERT_SQL.get(conn.dialect.name)
    if sql is None:
        m = _mark(conn)
        cols = ", ".join(_quote(conn, c) for c in REDEMPTION_FIELDS)
        sql = f"INSERT INTO redemptions ({cols}) VALUES ({_in_list(m, len(REDEMPTION_FIELDS))})"
        _INSERT_SQL[conn.dialect.name] = sql
    params = [tuple(r[c] for c in REDEMPTION_FIELDS) for r in rows]
    if len(params) == 1:
        _write(conn, sql, params[0], many=False)
    else:
        _write(conn, sql, params, many=True)
