# A site row for repository tests, and a site added in a transaction of its own (its id returned).
from __future__ import annotations

from typing import Any

from gateway.adapters.db.repositories.database import SqlDatabase


def site_row(slug: str, name: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "slug": slug,
        "name": name or slug,
        "timezone": "UTC",
        "auto_checkout": None,
        "created_at": 0.0,
        **extra,
    }


def add_site(db: SqlDatabase, slug: str) -> int:
    with db.write() as tx:
        tx.sites.add(site_row(slug))
        return tx.sites.ids()[slug]
