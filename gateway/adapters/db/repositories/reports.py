# The reports repository: the SQL behind services.ports.reports.Reports (ledger lines, sold orders).
from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Row, false, func, or_, select

from gateway.adapters.db.models import Order, Product, Redemption, Site

# Why the rows themselves and not dicts: a report streams every row of its period, and SQLAlchemy's
# rows already are the named records the port describes (one more object per row would only cost).
_CHUNK = 500  # order ids per IN list: well inside every driver's parameter limit
# (the one site asked for, the sites one may see or None for all, rows without a site seen too):
# services.ports.reports.Visible
Visible = tuple[str | None, frozenset[str] | None, bool]


def _site_filter(q: Any, visible: Visible) -> Any:
    site, sites, unsited = visible
    if site is not None:
        q = q.where(Site.slug == site)  # and still only within the sites one may see
    if sites is not None:
        allowed = Site.slug.in_(sorted(sites)) if sites else false()
        return q.where(or_(allowed, Site.slug.is_(None)) if unsited else allowed)
    return q


class SqlReports:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def lines(self, since: float | None, until: float | None, visible: Visible) -> Iterator[Row[Any]]:
        q = (
            select(
                Redemption.server_time,
                Redemption.gate,
                Redemption.device,
                Redemption.user,
                Redemption.op,
                Redemption.ok,
                Redemption.undone,
                Redemption.qty,
                Redemption.reason,
                Redemption.order_id,
                Site.slug.label("site"),
                Site.timezone.label("tz"),
                Product.title.label("product_title"),
                Order.title.label("order_title"),
            )
            .select_from(Redemption)
            .outerjoin(Site, Site.id == Redemption.site_id)
            .outerjoin(Order, Order.id == Redemption.order_id)
            .outerjoin(Product, Product.id == Order.product_id)
        )
        if since is not None:
            q = q.where(Redemption.server_time >= since)
        if until is not None:
            q = q.where(Redemption.server_time < until)
        q = _site_filter(q, visible).order_by(Redemption.id)
        yield from self.conn.execution_options(yield_per=2000).execute(q)

    def sold(self, since: float | None, until: float | None, visible: Visible) -> list[Row[Any]]:
        base = func.coalesce(Order.paid_at, Order.created_at)
        q = (
            select(
                Order.id,
                Order.code,
                Order.title,
                Order.kind,
                Order.quantity,
                Order.refunded,
                Order.status,
                Order.paid_at,
                Order.created_at,
                Site.slug.label("site"),
                Site.timezone.label("tz"),
            )
            .select_from(Order)
            .outerjoin(Site, Site.id == Order.site_id)
        )
        if until is not None:
            q = q.where(base < until)
        if since is not None:
            q = q.where(base >= since)
        q = _site_filter(q, visible).where(Order.status != "unpaid").order_by(Order.id)
        return list(self.conn.execute(q))

    def standing_units(self, order_ids: Sequence[int]) -> dict[int, list[tuple[float, int]]]:
        out: dict[int, list[tuple[float, int]]] = {}
        ids = list(order_ids)
        for i in range(0, len(ids), _CHUNK):
            rows = self.conn.execute(
                select(Redemption.order_id, Redemption.server_time, Redemption.qty).where(
                    Redemption.order_id.in_(ids[i : i + _CHUNK]),
                    Redemption.ok.is_(True),
                    Redemption.op == "redeem",
                    Redemption.undone.is_(False),
                )
            )
            for r in rows:
                out.setdefault(int(r.order_id), []).append((r.server_time, r.qty))
        return out
