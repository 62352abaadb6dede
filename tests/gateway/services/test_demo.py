# Demo data and its retirement: on a LAN broker every demo code still open is cancelled, or refunded.
from __future__ import annotations

import time
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from gateway.adapters.db.engine import make_engine, migrate
from gateway.adapters.db.models import Order
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.adapters.mqtt.oled import render
from gateway.domain.requests import Place, Request
from gateway.services.adjustments import cancel
from gateway.services.demo import DEMO_ORDERS, is_empty, load_demo, retire_demo
from gateway.services.ledger import apply_batch
from gateway.services.orders import OrderIn, create_orders


def _redeem(db: SqlDatabase, code: str, units: int) -> None:
    with db.write() as tx:
        place = Place(tx.sites.ids()["demo"], "Gate 1", ZoneInfo("UTC"))
        v = apply_batch(
            tx.ledger,
            [(Request("d1", f"s-{code}", code, units, "in", None), place)],
            time.time(),
            render=render,
        )[0]
    assert v.ok, v


def test_retire_cancels_open_demo_codes_refunds_used_ones_and_leaves_others(tmp_path: Path) -> None:
    e = make_engine(f"sqlite:///{tmp_path / 'd.db'}")
    migrate(e)
    db = SqlDatabase(e)
    assert is_empty(db)
    assert sorted(load_demo(db, "UTC")) == sorted(code for code, *_ in DEMO_ORDERS)
    create_orders(db, [OrderIn(code="HXDEMOX-1", title="Not a demo code", quantity=1)])
    assert not is_empty(db)
    _redeem(db, "HXDEMO-VIP-0001", 2)  # partly used: cannot be cancelled, the rest is refunded
    _redeem(db, "HXDEMO-ONCE-0003", 1)  # used up: nothing left to take back
    cancel(db, "HXDEMO-TOUR-0002", "ann", "sold out")  # cancelled already: not touched again
    done = retire_demo(db)
    assert sorted(done) == ["HXDEMO-CAR-0004", "HXDEMO-OLD-0005", "HXDEMO-SOON-0006", "HXDEMO-VIP-0001"]
    with e.connect() as c:
        rows = {
            r.code: (r.status, r.used, r.refunded)
            for r in c.execute(select(Order.code, Order.status, Order.used, Order.refunded))
        }
    assert rows == {
        "HXDEMO-VIP-0001": ("active", 2, 3),  # the 3 units left were refunded
        "HXDEMO-TOUR-0002": ("cancelled", 0, 0),
        "HXDEMO-ONCE-0003": ("active", 1, 0),
        "HXDEMO-CAR-0004": ("cancelled", 0, 0),
        "HXDEMO-OLD-0005": ("cancelled", 0, 0),
        "HXDEMO-SOON-0006": ("cancelled", 0, 0),
        "HXDEMOX-1": ("active", 0, 0),  # the prefix is HXDEMO-, not HXDEMO
    }
    assert retire_demo(db) == []  # nothing open is left
    e.dispose()
