# Automatic check-out: at a site's configured local time, everyone still "inside" is marked as left.
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select, update

from gateway.db.engine import writer
from gateway.db.models import Order, Site
from gateway.validity import parse_hhmm

log = logging.getLogger(__name__)


def last_checkout_before(now: float, hhmm: str, tz: str) -> float:
    """The most recent moment <= now at which the site's local clock showed `hhmm` (pure)."""
    zone = ZoneInfo(tz)
    local = datetime.fromtimestamp(now, zone)
    minutes = parse_hhmm(hhmm)
    at = local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(minutes=minutes)
    if at > local:
        at -= timedelta(days=1)
    return at.timestamp()


def due(since: float, now: float, hhmm: str, tz: str) -> bool:
    """True when the check-out time passed in (since, now]: run it once per day, even after a pause."""
    return since < last_checkout_before(now, hhmm, tz) <= now


def run_checkouts(engine: Engine, since: float, now: float) -> int:
    """Check out every site whose time came since the last run; returns how many orders were let out."""
    total = 0
    with engine.connect() as c:
        sites = c.execute(
            select(Site.id, Site.auto_checkout, Site.timezone).where(Site.auto_checkout.is_not(None))
        ).all()
    for site_id, hhmm, tz in sites:
        if hhmm is None or not due(since, now, hhmm, tz):
            continue
        with engine.connect() as c, writer(c).begin():
            res = c.execute(
                update(Order)
                .where(Order.inside.is_(True), Order.inside_site_id == site_id)
                .values(inside=False, inside_site_id=None, version=Order.version + 1)
            )
            total += res.rowcount
        log.info("automatic check-out at site %s: %d let out", site_id, res.rowcount)
    return total


def inside_now(engine: Engine) -> dict[str, int]:
    """People inside per site slug (orders whose last entry has no exit yet)."""
    with engine.connect() as c:
        rows = c.execute(
            select(Site.slug, func.count(Order.id))
            .select_from(Order)
            .join(Site, Site.id == Order.inside_site_id)
            .where(Order.inside.is_(True))
            .group_by(Site.slug)
        ).all()
    return {slug: int(n) for slug, n in rows}
