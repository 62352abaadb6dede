# The redemption log repository: each criterion narrows the listing, pages count all, the export pages by id.
from __future__ import annotations

from gateway.adapters.db.repositories.database import SqlDatabase
from tests.gateway.adapters.db.ledger_rows import redemption, site


def test_each_criterion_narrows_and_the_total_counts_every_page(db: SqlDatabase) -> None:
    e = db.engine
    a, b = site(e, "a"), site(e, "b")
    first = redemption(e, None, 10.0, a, device="d1", user="ann")
    redemption(e, None, 20.0, b, device="d2", ok=False, reason="USED_UP", code="X")
    last = redemption(e, None, 30.0, None, device="d1")
    with db.read() as tx:
        log = tx.redemption_log
        total, items = log.page({}, None, 2, 0)
        assert total == 3 and [i["id"] for i in items] == [last, last - 1]  # newest first
        assert items[1]["site"] == "b" and items[0]["site"] is None
        assert log.page({}, None, 2, 2)[1][0]["id"] == first
        assert log.page({"device": "d1"}, None, 9, 0)[0] == 2
        assert log.page({"device": "", "code": None}, None, 9, 0)[0] == 3  # unset criteria ask nothing
        assert [i["reason"] for i in log.page({"ok": False}, None, 9, 0)[1]] == ["USED_UP"]
        assert log.page({"ok": True, "user": "ann"}, None, 9, 0)[0] == 1
        assert log.page({"code": "X", "site": "b"}, None, 9, 0)[0] == 1
        assert log.page({"since": 10.0, "until": 30.0}, None, 9, 0)[0] == 2  # [since, until)
        assert log.page({}, frozenset({"a"}), 9, 0)[0] == 1  # seen sites only: no rows without a site
        assert log.page({}, frozenset(), 9, 0) == (0, [])


def test_the_export_pages_oldest_first_after_the_last_id(db: SqlDatabase) -> None:
    e = db.engine
    ids = [redemption(e, None, float(t), None, device="d") for t in range(5)]
    with db.read() as tx:
        first = tx.redemption_log.after({"device": "d"}, None, 0, 3)
        rest = tx.redemption_log.after({"device": "d"}, None, first[-1].id, 3)
        none = tx.redemption_log.after({"device": "other"}, None, 0, 3)
    assert [r.id for r in first] == ids[:3] and [r.id for r in rest] == ids[3:]
    assert (rest[0].server_time, rest[0].site, rest[0].device) == (3.0, None, "d")
    assert none == []
