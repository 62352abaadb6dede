# Demo data for an empty database: a site and orders a newcomer can scan at once.
from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

from gateway.domain.errors import Conflict
from gateway.services.adjustments import cancel, refund
from gateway.services.orders import OrderIn, SiteIn, create_orders, create_site
from gateway.services.ports.database import Database

DEMO_ORDERS = [
    ("HXDEMO-VIP-0001", "VIP Day Pass", 5, None, None),
    ("HXDEMO-TOUR-0002", "City Tour", 2, None, None),
    ("HXDEMO-ONCE-0003", "Single Entry", 1, None, None),
    ("HXDEMO-CAR-0004", "Car Wash x10", 10, None, None),
    ("HXDEMO-OLD-0005", "Expired Voucher", 1, -30, -1),
    ("HXDEMO-SOON-0006", "Next Week Concert", 1, 7, 8),
]


log = logging.getLogger(__name__)
DEMO_PREFIX = "HXDEMO-"


def retire_demo(db: Database) -> list[str]:
    """Cancel the demo orders (HXDEMO-*): their codes are printed in the docs and on every demo banner,
    so they are valid only while the broker serves this machine alone. Returns the codes cancelled now."""
    with db.read() as tx:
        codes = tx.orders.open_codes(DEMO_PREFIX)
    why = "demo codes are valid only while the broker is loopback-only"
    done = []
    for code in codes:
        try:
            cancel(db, code, "gateway", why)
        except Conflict:  # units were redeemed from it: refund what is left (nothing left: nothing to do)
            try:
                refund(db, code, None, "gateway", why)
            except Conflict:
                continue
        done.append(code)
    if done:
        log.warning("the broker is on the LAN: demo orders %s are no longer valid", ", ".join(done))
    return done


def is_empty(db: Database) -> bool:
    with db.read() as tx:
        return tx.orders.empty()


def load_demo(db: Database, tz: str) -> list[str]:
    create_site(db, SiteIn(slug="demo", name="Demo Shop", timezone=tz))
    day = 86400.0
    now = time.time()
    orders = []
    for code, title, qty, start, end in DEMO_ORDERS:
        vf = datetime.fromtimestamp(now + start * day, UTC) if start is not None else None
        vu = datetime.fromtimestamp(now + end * day, UTC) if end is not None else None
        orders.append(
            OrderIn(code=code, title=title, quantity=qty, site="demo", valid_from=vf, valid_until=vu)
        )
    return create_orders(db, orders)
