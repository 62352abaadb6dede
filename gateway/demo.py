# Demo data for an empty database, and the QR codes a newcomer scans to try a redemption at once.
from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import segno
from sqlalchemy import Engine, func, select

from gateway.db.models import Order
from gateway.orders import OrderIn, SiteIn, create_orders, create_site

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


def write_qr(code: str, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    qr = segno.make_qr(code, error="m")
    png, svg = folder / f"{code}.png", folder / f"{code}.svg"
    qr.save(str(png), scale=8, border=2)
    qr.save(str(svg), scale=4, border=2)
    return png, svg


def terminal_qr(code: str) -> str:
    import io

    buf = io.StringIO()
    segno.make_qr(code, error="m").terminal(out=buf, compact=True, border=1)
    return buf.getvalue()
