# The check-outs repository: which sites have a check-out, who is let out (only there), and the cursor.
from __future__ import annotations

from sqlalchemy import select

from gateway.adapters.db.models import Order, Site
from gateway.adapters.db.repositories.database import SqlDatabase
from tests.gateway.adapters.db.ledger_rows import order, site


def test_let_out_empties_one_site_and_bumps_the_versions(db: SqlDatabase) -> None:
    e = db.engine
    zoo = site(e, "zoo", "Asia/Shanghai", auto_checkout="23:00", created_at=5.0)
    pool = site(e, "pool")
    order(e, "A", zoo, inside=2, inside_site_id=zoo, version=3)
    order(e, "B", zoo, inside=1, inside_site_id=pool)
    order(e, "C", zoo)
    with db.read() as tx:
        assert tx.checkouts.scheduled() == [(zoo, "23:00", "Asia/Shanghai", None, 5.0)]
        assert tx.checkouts.inside() == {"zoo": 2, "pool": 1}
    with db.write() as tx:
        assert tx.checkouts.let_out(zoo) == 1
        tx.checkouts.ran_until(zoo, 99.0)
    with db.read() as tx:
        assert tx.checkouts.inside() == {"pool": 1}
        assert tx.checkouts.scheduled()[0][3] == 99.0
    with e.connect() as c:
        a = c.execute(
            select(Order.inside, Order.inside_site_id, Order.version).where(Order.code == "A")
        ).one()
        assert tuple(a) == (0, None, 4)
        assert c.execute(select(Site.checkout_cursor).where(Site.id == pool)).scalar() is None
