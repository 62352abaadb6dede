# The redemption log repository: the SQL behind services.ports.redemption_log.RedemptionLog.
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, Row, func, select

from gateway.adapters.db.models import Redemption, Site

_COLS = [
    Redemption.id,
    Redemption.server_time,
    Redemption.device,
    Redemption.scan_id,
    Site.slug.label("site"),
    Redemption.gate,
    Redemption.code,
    Redemption.qty,
    Redemption.direction,
    Redemption.ok,
    Redemption.reason,
    Redemption.device_time,
    Redemption.op,
    Redemption.user,
    Redemption.undone,
    Redemption.ref_id,
]
# The criteria that ask for an equal value when they are set (an empty text asks for nothing).
_EQUAL = {
    "device": Redemption.device,
    "code": Redemption.code,
    "user": Redemption.user,
    "reason": Redemption.reason,
    "site": Site.slug,
}


def _query(where: Mapping[str, Any], sites: frozenset[str] | None) -> Any:
    q = select(*_COLS).select_from(Redemption).outerjoin(Site, Site.id == Redemption.site_id)
    if sites is not None:
        q = q.where(Site.slug.in_(sorted(sites)))
    for name, col in _EQUAL.items():
        if where.get(name):
            q = q.where(col == where[name])
    if where.get("ok") is not None:
        q = q.where(Redemption.ok == where["ok"])
    if where.get("since") is not None:
        q = q.where(Redemption.server_time >= where["since"])
    if where.get("until") is not None:
        q = q.where(Redemption.server_time < where["until"])
    return q


class SqlRedemptionLog:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def page(
        self, where: Mapping[str, Any], sites: frozenset[str] | None, limit: int, offset: int
    ) -> tuple[int, list[dict[str, Any]]]:
        q = _query(where, sites)
        total = self.conn.execute(select(func.count()).select_from(q.subquery())).scalar_one()
        rows = self.conn.execute(q.order_by(Redemption.id.desc()).limit(limit).offset(offset)).all()
        return int(total), [dict(r._mapping) for r in rows]

    def after(
        self, where: Mapping[str, Any], sites: frozenset[str] | None, last_id: int, limit: int
    ) -> list[Row[Any]]:
        q = _query(where, sites).where(Redemption.id > last_id).order_by(Redemption.id).limit(limit)
        return list(self.conn.execute(q))
