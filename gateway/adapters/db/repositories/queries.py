# The console queries repository: the SQL behind services.ports.queries.Queries.
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, case, func, or_, select

from gateway.adapters.db.models import Order, Redemption, Site
from gateway.adapters.db.repositories.sites import site_of

# What counts: a redemption that still stands (not annulled or reverted). Annul/revert lines themselves are
# bookkeeping and count neither as redeemed nor as denied; exits are recorded with op "exit".
STANDING = Redemption.ok & (Redemption.op == "redeem") & Redemption.undone.is_(False)
DENIED = Redemption.ok.is_(False)


def _seen(q: Any, col: Any, seen: tuple[list[int] | None, bool]) -> Any:
    ids, unsited = seen
    if ids is None:
        return q
    if unsited:
        return q.where(or_(col.in_(ids), col.is_(None)))
    return q.where(col.in_(ids))


class SqlQueries:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def sites(self) -> list[tuple[int, str, str]]:
        return [
            (r.id, r.slug, r.timezone) for r in self.conn.execute(select(Site.id, Site.slug, Site.timezone))
        ]

    def gate_counts(
        self,
        since: Sequence[tuple[list[int] | None, float]],
        until: float,
        seen: tuple[list[int] | None, bool],
    ) -> list[dict[str, Any]]:
        starts = [
            and_(
                Redemption.site_id.is_(None) if ids is None else Redemption.site_id.in_(ids),
                Redemption.server_time >= t,
            )
            for ids, t in since
        ]
        q = (
            select(
                Redemption.site_id,
                Redemption.gate,
                func.sum(case((STANDING, 1), else_=0)).label("ok"),
                func.sum(case((STANDING, Redemption.qty), else_=0)).label("units"),
                func.sum(case((DENIED, 1), else_=0)).label("denied"),
            )
            .where(or_(*starts), Redemption.server_time <= until)
            .group_by(Redemption.site_id, Redemption.gate)
            .order_by(Redemption.site_id, Redemption.gate)
        )
        return [dict(r._mapping) for r in self.conn.execute(_seen(q, Redemption.site_id, seen))]

    def recent(
        self, limit: int, device: str | None, seen: tuple[list[int] | None, bool]
    ) -> list[dict[str, Any]]:
        q = (
            select(
                Redemption.server_time.label("t"),
                Redemption.device,
                Site.slug.label("site"),
                Redemption.gate,
                Redemption.code,
                Redemption.qty,
                Redemption.ok,
                Redemption.reason,
                Redemption.verdict,
                Redemption.user,
            )
            .select_from(Redemption)
            .outerjoin(Site, Site.id == Redemption.site_id)
            .order_by(Redemption.id.desc())
            .limit(limit)
        )
        if device:
            q = q.where(Redemption.device == device)
        return [dict(r._mapping) for r in self.conn.execute(_seen(q, Redemption.site_id, seen))]

    def find_orders(
        self,
        fields: Sequence[str],
        text: str,
        short: str,
        status: str,
        limit: int,
        seen: tuple[list[int] | None, bool],
    ) -> list[dict[str, Any]]:
        stmt = select(*(Order.__table__.c[f] for f in fields)).order_by(Order.id.desc())
        if text:
            like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            stmt = stmt.where(
                or_(
                    Order.code.like(like, escape="\\"),
                    Order.title.like(like, escape="\\"),
                    Order.external_ref.like(like, escape="\\"),
                    Order.short_code == short,
                )
            )
        if status:
            stmt = stmt.where(Order.status == status)
        rows = self.conn.execute(_seen(stmt, Order.site_id, seen).limit(limit))
        return [dict(r._mapping) for r in rows]

    def history(self, code: str, limit: int) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(
                Redemption.id,
                Redemption.server_time,
                Redemption.device,
                Site.slug.label("site"),
                Redemption.gate,
                Redemption.qty,
                Redemption.direction,
                Redemption.ok,
                Redemption.reason,
                Redemption.op,
                Redemption.undone,
                Redemption.user,
            )
            .select_from(Redemption)
            .outerjoin(Site, Site.id == Redemption.site_id)
            .where(Redemption.code == code)
            .order_by(Redemption.id.desc())
            .limit(limit)
        )
        return [dict(r._mapping) for r in rows]

    def redemption_site(self, redemption_id: int) -> tuple[bool, str | None]:
        return site_of(self.conn, Redemption.site_id, Redemption.id == redemption_id)

    def redemption_code(self, redemption_id: int) -> str | None:
        code: str | None = self.conn.execute(
            select(Redemption.code).where(Redemption.id == redemption_id)
        ).scalar()
        return code
