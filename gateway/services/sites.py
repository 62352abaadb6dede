# Sites (shops, venues): creation with a validated time zone and optional automatic check-out time.
from __future__ import annotations

import time
from typing import Any

from pydantic import Field, field_validator
from sqlalchemy import Connection, Engine, select

from gateway.adapters.db.models import Site
from gateway.domain.errors import Conflict
from gateway.domain.validity import parse_hhmm
from gateway.services.inputs import DEFAULT_TIMEZONE, StrictIn, known_zone
from gateway.services.unique import insert_unique


class SiteIn(StrictIn):
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")
    name: str = Field(min_length=1, max_length=120)
    timezone: str | None = Field(
        default=None, max_length=64, description="IANA name, e.g. Asia/Shanghai; default: TIMEZONE setting"
    )
    auto_checkout: str | None = Field(
        default=None,
        pattern=r"^[0-9]{2}:[0-9]{2}$",
        description="HH:MM local: everyone still inside is checked out",
    )

    @field_validator("timezone")
    @classmethod
    def _known_tz(cls, v: str | None) -> str | None:
        return None if v is None else known_zone(v)

    @field_validator("auto_checkout")
    @classmethod
    def _hhmm(cls, v: str | None) -> str | None:
        if v is not None:
            parse_hhmm(v)
        return v


def site_of(engine: Engine, site_id: Any, where: Any) -> tuple[bool, str | None]:
    """Whether a row matches `where`, and the slug of the site its `site_id` column names (None: none)."""
    with engine.connect() as c:
        row = c.execute(
            select(Site.slug).select_from(site_id.table).outerjoin(Site, Site.id == site_id).where(where)
        ).first()
    return (False, None) if row is None else (True, row.slug)


def site_ids(conn: Connection) -> dict[str, int]:
    return {slug: sid for slug, sid in conn.execute(select(Site.slug, Site.id))}


def create_site(engine: Engine, site: SiteIn, default_tz: str = DEFAULT_TIMEZONE) -> dict[str, Any]:
    """`default_tz` (the gateway's TIMEZONE) is the zone of a site created without one."""
    zone = site.timezone or known_zone(default_tz)
    row = {
        "slug": site.slug,
        "name": site.name,
        "timezone": zone,
        "auto_checkout": site.auto_checkout,
        "created_at": time.time(),
    }
    insert_unique(engine, Site.slug, site.slug, row, Conflict(f"site {site.slug!r} exists", slug=site.slug))
    return {**site.model_dump(), "timezone": zone}


def list_sites(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as c:
        rows = c.execute(
            select(Site.slug, Site.name, Site.timezone, Site.auto_checkout).order_by(Site.slug)
        ).all()
    return [
        {"slug": r.slug, "name": r.name, "timezone": r.timezone, "auto_checkout": r.auto_checkout}
        for r in rows
    ]
