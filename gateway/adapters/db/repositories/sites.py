# The sites repository: the SQL behind services.ports.sites.Sites, and the "which site is this row's" look-up.
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from gateway.adapters.db.models import Site
from gateway.adapters.db.repositories.unique import insert_unique


def site_of(conn: Connection, site_id: Any, where: Any) -> tuple[bool, str | None]:
    """Whether a row matches `where`, and the slug of the site its `site_id` column names (None: none)."""
    row = conn.execute(
        select(Site.slug).select_from(site_id.table).outerjoin(Site, Site.id == site_id).where(where)
    ).first()
    return (False, None) if row is None else (True, row.slug)


class SqlSites:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def ids(self) -> dict[str, int]:
        return {slug: sid for slug, sid in self.conn.execute(select(Site.slug, Site.id))}

    def by_slug(self, slug: str) -> tuple[int, str] | None:
        row = self.conn.execute(select(Site.id, Site.timezone).where(Site.slug == slug)).first()
        return None if row is None else (row.id, row.timezone)

    def zones(self) -> dict[str, str]:
        return {slug: tz for slug, tz in self.conn.execute(select(Site.slug, Site.timezone))}

    def add(self, row: dict[str, Any]) -> bool:
        return insert_unique(self.conn, Site.slug, row["slug"], row)

    def listing(self) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(Site.slug, Site.name, Site.timezone, Site.auto_checkout).order_by(Site.slug)
        ).all()
        return [
            {"slug": r.slug, "name": r.name, "timezone": r.timezone, "auto_checkout": r.auto_checkout}
            for r in rows
        ]
