# The ledger repository: version-checked writes refuse a moved row, an undo is claimed once, undo reads.
from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from gateway.adapters.db.models import Audit, Order, Redemption
from gateway.adapters.db.repositories.database import SqlDatabase
from tests.gateway.adapters.db.ledger_rows import order, redemption, site


def test_a_version_checked_write_refuses_a_row_another_writer_moved(db: SqlDatabase) -> None:
    e = db.engine
    order(e, "R", quantity=1)
    with db.write() as tx:
        view = tx.ledger.order_by_code("R")
        assert view is not None and tx.ledger.order(view.id) == view
        # Another writer takes the last unit between our read and our update.
        # (SQLite's write lock keeps other connections out: the transaction's own connection moves it)
        tx.ledger.conn.execute(Order.__table__.update().values(used=1, version=Order.version + 1))
        assert not tx.ledger.write_order(replace(view, used=1), view.version)
        assert not tx.ledger.refund(view.id, view.version, 1, "refunded")
        assert not tx.ledger.cancel(view.id, view.version)
        assert tx.ledger.write_order(replace(view, used=1, inside=1), view.version + 1)
        assert tx.ledger.cancel(view.id, view.version + 2)
    with e.connect() as c:
        row = c.execute(select(Order.used, Order.inside, Order.status, Order.version)).one()
    assert tuple(row) == (1, 1, "cancelled", 3)


def test_an_undo_is_claimed_once_and_reads_what_came_after(db: SqlDatabase) -> None:
    e = db.engine
    s = site(e, "s", "Asia/Shanghai")
    o = order(e, "X", s, quantity=5)
    entry = redemption(e, o, 10.0, s, qty=2, inside_delta=2, idem_key="d:a/1")
    redemption(e, o, 20.0, s, qty=1, inside_delta=-1, op="exit")
    later = redemption(e, o, 30.0, s, qty=1, gate="g2")
    redemption(e, o, 40.0, s, qty=1, undone=True)
    redemption(e, o, 50.0, s, qty=1, direction="out")
    redemption(e, o, 60.0, s, qty=1, inside_delta=1, op="annul", ref_id=entry)
    with db.write() as tx:
        ledger = tx.ledger
        assert ledger.site_zone(s) == "Asia/Shanghai" and ledger.site_zone(s + 1) is None
        one = ledger.recorded_id(entry)
        assert one is not None and ledger.recorded(["d:a/1", "d:a/none"]) == {"d:a/1": one}
        assert (one.qty, one.inside_delta, one.op, one.undone, one.site_id) == (2, 2, "redeem", False, s)
        assert ledger.moves_after(o, entry) == [(-1, "exit", None), (1, "annul", entry)]
        assert ledger.last_use(o, [entry]) == (30.0, "g2")  # the latest entry that used units and stands
        assert ledger.last_use(o, [entry, later]) == (None, None)
        assert ledger.undo_once(entry) and not ledger.undo_once(entry)
        ledger.record([], [{"at": 1.0, "actor": "t", "action": "revert", "order_id": o, "redemption_id": entry,
                            "units": 2, "reason": "r"}])  # fmt: skip
    with e.connect() as c:
        assert c.execute(select(Redemption.undone).where(Redemption.id == entry)).scalar() is True
        assert c.execute(select(Audit.action, Audit.units)).all() == [("revert", 2)]


def test_nothing_asked_reads_nothing(db: SqlDatabase) -> None:
    with db.read() as tx:
        assert tx.ledger.verdicts([]) == {} and tx.ledger.recorded([]) == {}
        assert tx.ledger.orders(set()) == {} and tx.ledger.order_by_code("none") is None
        assert tx.ledger.recorded_id(1) is None and tx.ledger.order(1) is None
