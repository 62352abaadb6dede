# The reports repository: which ledger lines and sold orders a scope reads, and the units that still stand.
from __future__ import annotations

from gateway.adapters.db.repositories.database import SqlDatabase
from tests.gateway.adapters.db.ledger_rows import order, orders, redemption, site


def test_lines_are_cut_by_time_and_site_with_their_zone_and_titles(db: SqlDatabase) -> None:
    e = db.engine
    a, b = site(e, "a", "Europe/Berlin"), site(e, "b")
    o = order(e, "X", a)
    first = redemption(e, o, 10.0, a)
    redemption(e, o, 20.0, b)
    redemption(e, None, 30.0, None, ok=False, reason="UNKNOWN_CODE")
    with db.read() as tx:
        every = list(tx.reports.lines(None, None, (None, None, True)))
        window = [r.server_time for r in tx.reports.lines(10.0, 30.0, (None, None, True))]
        only_a = [r.server_time for r in tx.reports.lines(None, None, (None, frozenset({"a"}), False))]
        a_and_unsited = [r.server_time for r in tx.reports.lines(None, None, (None, frozenset({"a"}), True))]
        named = [r.server_time for r in tx.reports.lines(None, None, ("b", frozenset({"a"}), True))]
        nothing = list(tx.reports.lines(None, None, (None, frozenset(), False)))
    assert [r.server_time for r in every] == [10.0, 20.0, 30.0]
    line = every[0]
    assert (line.site, line.tz, line.order_title, line.product_title, line.order_id) == (
        "a",
        "Europe/Berlin",
        "title X",
        None,
        o,
    )
    assert (every[2].site, every[2].tz, every[2].ok, every[2].reason) == (None, None, False, "UNKNOWN_CODE")
    assert window == [10.0, 20.0]  # [since, until)
    assert only_a == [10.0] and a_and_unsited == [10.0, 30.0]
    assert named == []  # a named site is still only one of the sites one may see
    assert nothing == [] and first > 0


def test_sold_orders_leave_unpaid_out_and_cut_by_payment_else_creation(db: SqlDatabase) -> None:
    e = db.engine
    s = site(e, "s", "Asia/Shanghai")
    order(e, "paid", s, created_at=1.0, paid_at=50.0)
    order(e, "created", None, created_at=40.0)
    order(e, "unpaid", s, created_at=45.0, status="unpaid")
    order(e, "late", s, created_at=10.0, paid_at=100.0)
    with db.read() as tx:
        sold = tx.reports.sold(30.0, 100.0, (None, None, True))
        seen = tx.reports.sold(None, None, (None, frozenset({"s"}), False))
    assert [(o.code, o.site, o.tz) for o in sold] == [("paid", "s", "Asia/Shanghai"), ("created", None, None)]
    assert [o.code for o in seen] == ["paid", "late"]


def test_standing_units_are_the_redemptions_that_still_count(db: SqlDatabase) -> None:
    e = db.engine
    ids = orders(e, [f"o{i}" for i in range(501)], quantity=9)  # more than one IN list
    redemption(e, ids[0], 1.0, qty=2)
    redemption(e, ids[0], 2.0, undone=True)  # annulled or reverted
    redemption(e, ids[0], 3.0, op="exit")
    redemption(e, ids[0], 4.0, ok=False, reason="USED_UP")
    redemption(e, ids[0], 5.0, op="annul")
    redemption(e, ids[500], 6.0, qty=3)
    with db.read() as tx:
        standing = tx.reports.standing_units(ids)
        none = tx.reports.standing_units([])
    assert standing == {ids[0]: [(1.0, 2)], ids[500]: [(6.0, 3)]}
    assert none == {}
