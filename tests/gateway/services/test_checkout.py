# Automatic check-out at a site's local time: the pure "is it due" rule and the ledger update it drives.
from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select, update

from gateway.adapters.db.engine import make_engine, migrate
from gateway.adapters.db.models import Order
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.services.auto_checkout import due, inside_now, last_checkout_before, run_checkouts
from gateway.services.orders import OrderIn, create_orders
from gateway.services.sites import SiteIn, create_site

SH = ZoneInfo("Asia/Shanghai")


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=SH).timestamp()


def test_due_once_per_day_in_local_time() -> None:
    assert last_checkout_before(ts("2026-11-23 23:30"), "23:00", "Asia/Shanghai") == ts("2026-11-23 23:00")
    assert last_checkout_before(ts("2026-11-23 22:59"), "23:00", "Asia/Shanghai") == ts("2026-11-22 23:00")
    assert due(ts("2026-11-23 22:59"), ts("2026-11-23 23:00"), "23:00", "Asia/Shanghai")
    assert not due(ts("2026-11-23 23:00"), ts("2026-11-23 23:20"), "23:00", "Asia/Shanghai")  # already done
    assert due(ts("2026-11-23 12:00"), ts("2026-11-24 09:00"), "23:00", "Asia/Shanghai")  # after a pause
    assert not due(ts("2026-11-23 08:00"), ts("2026-11-23 09:00"), "23:00", "Asia/Shanghai")
    # 23:00 in Shanghai is 15:00 UTC: the site's clock counts, not the server's.
    assert due(ts("2026-11-23 22:00"), ts("2026-11-23 23:05"), "23:00", "Asia/Shanghai")
    assert not due(ts("2026-11-23 22:00"), ts("2026-11-23 23:05"), "23:00", "Europe/Berlin")


def test_run_checkouts_lets_everyone_out_of_that_site_only(tmp_path: Path) -> None:
    e = make_engine(f"sqlite:///{tmp_path / 'c.db'}")
    migrate(e)
    create_site(SqlDatabase(e), SiteIn(slug="zoo", name="Zoo", auto_checkout="23:00"))
    create_site(SqlDatabase(e), SiteIn(slug="pool", name="Pool"))  # no automatic check-out
    create_orders(SqlDatabase(e), [OrderIn(code=f"O{i}", title="t") for i in range(3)])
    with e.begin() as c:
        c.execute(update(Order).where(Order.code.in_(["O0", "O1"])).values(inside=True, inside_site_id=1))
        c.execute(update(Order).where(Order.code == "O2").values(inside=True, inside_site_id=2))
    assert inside_now(SqlDatabase(e)) == {"zoo": 2, "pool": 1}
    assert run_checkouts(SqlDatabase(e), ts("2026-11-23 08:00"), ts("2026-11-23 09:00")) == 0  # not yet
    assert run_checkouts(SqlDatabase(e), ts("2026-11-23 22:59"), ts("2026-11-23 23:00")) == 2
    assert inside_now(SqlDatabase(e)) == {"pool": 1}
    with e.connect() as c:
        assert c.execute(select(Order.version).where(Order.code == "O0")).scalar_one() == 1  # races are seen
