# Automatic check-out: at a site's configured local time, everyone still "inside" is marked as left.
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.domain.validity import parse_hhmm
from gateway.services.ports.database import Database

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


def run_checkouts(db: Database, since: float | None, now: float) -> int:
    """Check out every site whose time came in (since, now]; returns how many units were let out.

    `since` None: each site resumes from its persisted cursor (its creation when it never ran), so a
    gateway that was down across the check-out time still lets everyone out when it comes back.
    """
    total = 0
    with db.read() as tx:
        sites = tx.checkouts.scheduled()
    for site_id, hhmm, tz, cursor, created in sites:
        start = since if since is not None else (cursor if cursor is not None else created)
        with db.write() as tx:
            n = 0
            if hhmm is not None and due(start, now, hhmm, tz):
                n = tx.checkouts.let_out(site_id)
                log.info("automatic check-out at site %s: %d orders let out", site_id, n)
            tx.checkouts.ran_until(site_id, now)
        total += n
    return total


def inside_now(db: Database) -> dict[str, int]:
    """Units inside per site slug (entered and not seen leaving)."""
    with db.read() as tx:
        return tx.checkouts.inside()
