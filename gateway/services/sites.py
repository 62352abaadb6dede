# Sites (shops, venues): creation with a validated time zone and optional automatic check-out time.
from __future__ import annotations

import time
from typing import Any

from pydantic import Field, field_validator

from gateway.domain.errors import Conflict
from gateway.domain.validity import parse_hhmm
from gateway.services.inputs import DEFAULT_TIMEZONE, StrictIn, known_zone
from gateway.services.ports.database import Database


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


def create_site(db: Database, site: SiteIn, default_tz: str = DEFAULT_TIMEZONE) -> dict[str, Any]:
    """`default_tz` (the gateway's TIMEZONE) is the zone of a site created without one."""
    zone = site.timezone or known_zone(default_tz)
    row = {
        "slug": site.slug,
        "name": site.name,
        "timezone": zone,
        "auto_checkout": site.auto_checkout,
        "created_at": time.time(),
    }
    with db.write() as tx:
        if not tx.sites.add(row):
            raise Conflict(f"site {site.slug!r} exists", slug=site.slug)
    return {**site.model_dump(), "timezone": zone}


def list_sites(db: Database) -> list[dict[str, Any]]:
    with db.read() as tx:
        return tx.sites.listing()
