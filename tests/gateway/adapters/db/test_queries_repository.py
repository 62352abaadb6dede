# The console queries repository: per-gate counts from each zone's start, what one may see, order search.
from __future__ import annotations

from gateway.adapters.db.repositories.database import SqlDatabase
from tests.gateway.adapters.db.ledger_rows import order, redemption, site


def test_gate_counts_start_per_site_and_count_what_still_stands(db: SqlDatabase) -> None:
    e = db.engine
    a, b = site(e, "a", "Europe/Berlin"), site(e, "b")
    redemption(e, None, 10.0, a, qty=2)
    redemption(e, None, 11.0, a, undone=True)  # annulled later: neither redeemed nor denied
    redemption(e, None, 12.0, a, op="annul")  # the annul line itself is bookkeeping
    redemption(e, None, 13.0, a, ok=False, reason="USED_UP")
    redemption(e, None, 5.0, b)  # before b's start
    redemption(e, None, 20.0, b, gate="g2")
    redemption(e, None, 30.0, None)
    redemption(e, None, 99.0, a)  # after `until`
    every = [([a], 0.0), ([b], 10.0), (None, 0.0)]
    with db.read() as tx:
        q = tx.queries
        assert sorted(q.sites()) == [(a, "a", "Europe/Berlin"), (b, "b", "UTC")]
        rows = q.gate_counts(every, 30.0, (None, True))
        mine = q.gate_counts(every, 30.0, ([a], False))
        mine_and_unsited = q.gate_counts(every, 30.0, ([a], True))
        no_unsited_start = q.gate_counts(every[:2], 30.0, (None, True))
    assert {(r["site_id"], r["gate"]): (r["ok"], r["units"], r["denied"]) for r in rows} == {
        (a, "g"): (1, 2, 1),
        (b, "g2"): (1, 1, 0),
        (None, "g"): (1, 1, 0),
    }
    assert [r["site_id"] for r in mine] == [a]
    assert sorted(str(r["site_id"]) for r in mine_and_unsited) == sorted([str(a), "None"])
    assert None not in [r["site_id"] for r in no_unsited_start]


def test_recent_history_and_one_redemption(db: SqlDatabase) -> None:
    e = db.engine
    a = site(e, "a")
    first = redemption(e, None, 1.0, a, device="d1", code="X", verdict='{"l1": "OK"}')
    redemption(e, None, 2.0, None, device="d2", code="X")
    last = redemption(e, None, 3.0, a, device="d1", code="Y")
    with db.read() as tx:
        q = tx.queries
        assert [r["t"] for r in q.recent(2, None, (None, True))] == [3.0, 2.0]
        assert [r["t"] for r in q.recent(9, "d1", (None, True))] == [3.0, 1.0]
        assert [r["site"] for r in q.recent(9, None, ([a], False))] == ["a", "a"]
        assert q.recent(9, None, ([], False)) == []
        assert q.recent(1, None, ([a], False))[0]["verdict"] == "{}"
        assert [(h["id"], h["site"]) for h in q.history("X", 9)] == [(first + 1, None), (first, "a")]
        assert q.redemption_site(last) == (True, "a") and q.redemption_site(first + 1) == (True, None)
        assert q.redemption_site(last + 1) == (False, None)
        assert q.redemption_code(first) == "X" and q.redemption_code(last + 1) is None


def test_order_search_takes_the_text_literally_and_finds_short_codes(db: SqlDatabase) -> None:
    e = db.engine
    a = site(e, "a")
    order(e, "CODE-1", a, title="100% fun", short_code="ABCD1234")
    order(e, "CODE_2", None, title="plain", external_ref="ext-9", status="cancelled")
    fields = ("code", "site_id", "status")
    with db.read() as tx:
        q = tx.queries

        def codes(
            text: str, short: str = "", status: str = "", seen: tuple[list[int] | None, bool] = (None, True)
        ) -> list[str]:
            return [r["code"] for r in q.find_orders(fields, text, short, status, 9, seen)]

        assert codes("") == ["CODE_2", "CODE-1"]  # newest first
        assert codes("%") == ["CODE-1"] and codes("_") == ["CODE_2"]  # wildcards are plain characters
        assert codes("ext-9") == ["CODE_2"] and codes("fun") == ["CODE-1"]
        assert codes("zzz", "ABCD1234") == ["CODE-1"]
        assert codes("", status="cancelled") == ["CODE_2"]
        assert codes("", seen=([a], False)) == ["CODE-1"] and codes("", seen=([a], True)) == [
            "CODE_2",
            "CODE-1",
        ]
        assert q.find_orders(fields, "CODE-1", "", "", 9, (None, True)) == [
            {"code": "CODE-1", "site_id": a, "status": "active"}
        ]
