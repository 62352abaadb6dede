# The ledger repository: the SQL behind services.ports.ledger.Ledger (the hot path's via hotsql).
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from gateway.adapters.db import hotsql
from gateway.adapters.db.hotsql import ORDER_COLS, order_view
from gateway.adapters.db.models import Audit, Order, Redemption, Site
from gateway.domain.codes import normalize_short
from gateway.domain.decisions import OrderView
from gateway.domain.order_state import Use

_REF_COLS = (
    Redemption.idem_key,
    Redemption.id,
    Redemption.order_id,
    Redemption.qty,
    Redemption.ok,
    Redemption.op,
    Redemption.undone,
    Redemption.server_time,
    Redemption.direction,
    Redemption.inside_delta,
    Redemption.day_key,
    Redemption.site_id,
    Redemption.code,
    Redemption.gate,
)


class SqlLedger:
    failures: tuple[type[Exception], ...] = (SQLAlchemyError,)

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def orders(self, codes: set[str], ids: set[int] | None = None) -> dict[str, OrderView]:
        out: dict[str, OrderView] = {}
        conn = self.conn
        if codes:
            for o in hotsql.select_orders(conn, list(codes)):
                out[o.code] = o
            missing = {normalize_short(c) for c in codes if c not in out}
            if missing:
                rows = conn.execute(
                    select(Order.short_code, *ORDER_COLS).where(Order.short_code.in_(missing))
                ).all()
                by_short = {r[0]: order_view(r[1:]) for r in rows}
                for c in codes:
                    v = by_short.get(normalize_short(c))
                    if c not in out and v is not None:
                        out[c] = v
        if ids:
            for r in conn.execute(select(*ORDER_COLS).where(Order.id.in_(ids))):
                out.setdefault(r.code, order_view(r))
        return out

    def order(self, order_id: int, *, lock: bool = False) -> OrderView | None:
        if lock:
            q = select(*ORDER_COLS).where(Order.id == order_id).with_for_update()
            row = self.conn.execute(q).first()
            return None if row is None else order_view(row)
        for o in hotsql.select_orders_by_id(self.conn, [order_id]):
            return o
        return None

    def order_by_code(self, code: str, *, lock: bool = False) -> OrderView | None:
        q = select(*ORDER_COLS).where(Order.code == code)
        # FOR UPDATE (PostgreSQL; SQLite's write transaction already holds the whole file): the row
        # stays as read until commit, so a version-checked write after it cannot lose a race.
        row = self.conn.execute(q.with_for_update() if lock else q).first()
        return None if row is None else order_view(row)

    def verdicts(self, keys: Sequence[str]) -> dict[str, tuple[str, str | None]]:
        if not keys:
            return {}
        return hotsql.select_verdicts(self.conn, list(keys))

    def recorded(self, keys: Sequence[str]) -> dict[str, Any]:  # rows: Recorded's fields
        if not keys:
            return {}
        rows = self.conn.execute(select(*_REF_COLS).where(Redemption.idem_key.in_(keys)))
        return {r.idem_key: r for r in rows}

    def recorded_id(self, redemption_id: int) -> Any:
        return self.conn.execute(select(*_REF_COLS).where(Redemption.id == redemption_id)).first()

    def moves_after(self, order_id: int, redemption_id: int) -> list[tuple[int, str, int | None]]:
        rows = self.conn.execute(
            select(Redemption.inside_delta, Redemption.op, Redemption.ref_id)
            .where(
                Redemption.order_id == order_id, Redemption.id > redemption_id, Redemption.inside_delta != 0
            )
            .order_by(Redemption.id)
        )
        return [(int(r.inside_delta), r.op, r.ref_id) for r in rows]

    def last_use(self, order_id: int, not_ids: Sequence[int]) -> tuple[float | None, str | None]:
        last = self.conn.execute(
            select(Redemption.server_time, Redemption.gate)
            .where(
                Redemption.order_id == order_id,
                Redemption.ok.is_(True),
                Redemption.op == "redeem",
                Redemption.qty > 0,
                Redemption.direction == "in",
                Redemption.undone.is_(False),
                Redemption.id.not_in(list(not_ids)),
            )
            .order_by(Redemption.server_time.desc(), Redemption.id.desc())
            .limit(1)
        ).first()
        return (last.server_time, last.gate) if last is not None else (None, None)

    def apply_use(self, u: Use, expected: OrderView) -> OrderView | None:
        return hotsql.apply_use(self.conn, u, expected)

    def write_order(self, new: OrderView, version: int) -> bool:
        row = (new.used, new.last_used_at, new.last_used_gate, new.day_key, new.day_used, new.inside,
               new.inside_site_id, version + 1, new.id, version)  # fmt: skip
        return hotsql.update_orders(self.conn, [row]) == 1

    def undo_once(self, redemption_id: int) -> bool:
        res = self.conn.execute(
            update(Redemption)
            .where(Redemption.id == redemption_id, Redemption.undone.is_(False))
            .values(undone=True)
        )
        return bool(res.rowcount == 1)

    def record(self, rows: list[dict[str, Any]], audits: list[dict[str, Any]]) -> None:
        if rows:
            hotsql.insert_redemptions(self.conn, rows)
        if audits:
            self.conn.execute(insert(Audit), audits)

    def refund(self, order_id: int, version: int, refunded: int, status: str) -> bool:
        return self._versioned(order_id, version, refunded=refunded, status=status)

    def cancel(self, order_id: int, version: int) -> bool:
        return self._versioned(order_id, version, status="cancelled")

    def _versioned(self, order_id: int, version: int, **values: Any) -> bool:
        res = self.conn.execute(
            update(Order)
            .where(Order.id == order_id, Order.version == version)
            .values(version=version + 1, **values)
        )
        return bool(res.rowcount == 1)

    def site_zone(self, site_id: int | None) -> str | None:
        zone: str | None = self.conn.execute(select(Site.timezone).where(Site.id == site_id)).scalar()
        return zone
