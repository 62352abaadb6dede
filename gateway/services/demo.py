# Demo data for an empty database: a site and orders a newcomer can scan at once.
from __future__ import annotations

import time
from datetime import UTC, datetime

from sqlalchemy import Engine, func, select

from gateway.adapters.db.models import Order
from gateway.services.orders import OrderIn, SiteIn, create_orders, create_site

DEMO_ORDERS = [
    ("HXDEMO-VIP-0001", "VIP Day Pass", 5, None, None),
    ("HXDEMO-TOUR-0002", "City Tour", 2, None, None),
    ("HXDEMO-ONCE-0003", "Single Entry", 1, None, None),
    ("HXDEMO-CAR-0004", "Car Wash x10", 10, None, None),
    ("HXDEMO-OLD-0005", "Expired Voucher", 1, -30, -1),
    ("HXDEMO-SOON-0006", "Next Week Concert", 1, 7, 8),
]


def is_empty(engine: Engine) -> bool:
    with engine.connect() as c:
        return int(c.execute(select(func.count()).select_from(Order)).scalar_one()) == 0


def load_demo(engine: Engine, tz: str) -> list[str]:
    create_site(engine, SiteIn(slug="demo", name="Demo Shop", timezone=tz))
    day = 86400.0
    now = time.time()
    orders = []
    for code, title, qty, start, end in DEMO_ORDERS:
        vf = datetime.fromtimestamp(now + start * day, UTC) if start is not None else None
        vu = datetime.fromtimestamp(now + end * day, UTC) if end is not None else None
        orders.append(
            OrderIn(code=code, title=title, quantity=qty, site="demo", valid_from=vf, valid_until=vu)
        )
    return create_orders(engine, orders)
