# Automatic check-out: at a site's configured local time, everyone still "inside" is marked as left.
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select, update

from gateway.adapters.db.engine import writer
from gateway.adapters.db.models import Order, Site
from gateway.domain.validity import parse_hhmm

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


def run_checkouts(engine: Engine, since: float | None, now: float) -> int:
    """Check out every site whose time came in (since, now]; returns how many units were let out.

    `since` None: each site resumes from its persisted cursor (its creation when it never ran), so a
    gateway that was down across the check-out time still lets everyone out when it comes back.
    """
    total = 0
    with engine.connect() as c:
        sites = c.execute(
            select(Site.id, Site.auto_checkout, Site.timezone, Site.checkout_cursor, Site.created_at).where(
                Site.auto_checkout.is_not(None)
            )
        ).all()
    for site_id, hhmm, tz, cursor, created in sites:
        start = since if since is not None else (cursor if cursor is not None else created)
        with engine.connect() as c, writer(c).begin():
            n = 0
            if hhmm is not None and due(start, now, hhmm, tz):
                n = int(
                    c.execute(
                        update(Order)
                        .where(Order.inside > 0, Order.inside_site_id == site_id)
                        .values(inside=0, inside_site_id=None, version=Order.version + 1)
                    ).rowcount
                )
                log.info("automatic check-out at site %s: %d orders let out", site_id, n)
            c.execute(update(Site).where(Site.id == site_id).values(checkout_cursor=now))
        total += n
    return total


def inside_now(engine: Engine) -> dict[str, int]:
    """Units inside per site slug (entered and not seen leaving)."""
    with engine.connect() as c:
        rows = c.execute(
            select(Site.slug, func.sum(Order.inside))
            .select_from(Order)
            .join(Site, Site.id == Order.inside_site_id)
            .where(Order.inside > 0)
            .group_by(Site.slug)
        ).all()
    return {slug: int(n) for slug, n in rows}
