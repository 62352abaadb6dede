# The hot path's conditional updates: a stale decision is refused by the row itself and decided again.
from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, text

from gateway.adapters.db import hotsql
from gateway.adapters.db.engine import writer
from gateway.adapters.db.repositories.ledger import SqlLedger
from gateway.adapters.mqtt.oled import render
from gateway.domain.decisions import Ask, OrderView, decide
from gateway.domain.order_state import use
from gateway.domain.requests import Request
from gateway.services.ledger import apply_batch
from tests.gateway.trust_fixtures import add_order, add_site, at, ledger, order, place, scan
from tests.helpers import wait_for

T0 = at("2026-11-23 10:00")
KINDS = ["sqlite", "pg"]


def _stale_use(e: Engine, code: str, ask: Ask, now: float, change: str) -> OrderView | None:
    """Decide `ask` on the order as read, let `change` (SQL) move the row, then apply: the order after,
    or None when the guard refused. The other writer is simulated inside our transaction (on SQLite
    BEGIN IMMEDIATE keeps real ones out, the guard is the same statement). Rolled back: every case starts from the committed row."""
    p = place()
    with e.connect() as c:
        tx = writer(c).begin()
        try:
            o = SqlLedger(c).orders({code})[code]
            d = decide(o, ask, p.site_id, p.gate, now, p.tz)
            u = use(o, d, p, now)
            assert d.ok and u is not None, d
            c.execute(text(change), {"code": code})
            if hotsql.apply_use(c, u, o) is None:
                return None
            return SqlLedger(c).orders({code})[code]  # the row itself (SQLite's writer cannot see others)
        finally:
            tx.rollback()


@pytest.mark.parametrize("kind", KINDS)
def test_every_guard_refuses_what_another_writer_invalidated(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    e = ledger(kind, tmp_path, request)
    add_order(e, "T", 2)
    add_order(e, "V", 500, kind="value")
    add_order(e, "D", 10, rules={"per_day": 2})
    add_order(e, "G", 10, rules={"min_interval_s": 60})
    add_order(e, "R", 2, rules={"reentry": True})
    add_order(e, "X", 2, rules={"passback": True})
    one = Ask("redeem", 1, None, "in")
    bump = "UPDATE orders SET version = version + 1 WHERE code = :code"
    # Unrelated changes (the version alone) do not refuse a use: no more whole-batch optimism.
    assert _stale_use(e, "T", one, T0, bump)
    assert not _stale_use(e, "T", one, T0, "UPDATE orders SET used = 2 WHERE code = :code")
    assert not _stale_use(
        e, "V", Ask("redeem", 1, 300, "in"), T0, "UPDATE orders SET used = 300 WHERE code = :code"
    )
    assert _stale_use(
        e, "V", Ask("redeem", 1, 100, "in"), T0, "UPDATE orders SET used = 400 WHERE code = :code"
    )
    refund = "UPDATE orders SET refunded = quantity - used, status = 'refunded' WHERE code = :code"
    assert not _stale_use(
        e, "T", one, T0, "UPDATE orders SET used = 0, status = 'cancelled' WHERE code = :code"
    )
    assert not _stale_use(
        e, "D", one, T0, "UPDATE orders SET day_key = '20261123', day_used = 2 WHERE code = :code"
    )
    assert _stale_use(
        e, "D", one, T0, "UPDATE orders SET day_key = '20261122', day_used = 2 WHERE code = :code"
    )
    assert not _stale_use(e, "G", one, T0, f"UPDATE orders SET last_used_at = {T0 - 10} WHERE code = :code")
    assert _stale_use(e, "G", one, T0, f"UPDATE orders SET last_used_at = {T0 - 60} WHERE code = :code")
    # R: one unit used today and seen leaving; the re-entry holds only while that is still so.
    left_today = (
        "UPDATE orders SET used = 1, day_key = '20261123', day_used = 1, inside = 0 WHERE code = :code"
    )
    with e.begin() as c:
        c.execute(text(left_today), {"code": "R"})
    assert not _stale_use(e, "R", one, T0, "UPDATE orders SET inside = 1 WHERE code = :code")
    back = _stale_use(e, "R", one, T0, bump)
    assert back is not None and (back.used, back.inside) == (1, 1)  # in again, no unit used
    # X: two inside; an exit of one holds while someone is still inside to let out.
    with e.begin() as c:
        c.execute(text("UPDATE orders SET used = 2, inside = 2 WHERE code = :code"), {"code": "X"})
    assert not _stale_use(
        e, "X", Ask("redeem", 2, None, "out"), T0, "UPDATE orders SET inside = 1 WHERE code = :code"
    )
    out = _stale_use(
        e, "X", Ask("redeem", 1, None, "out"), T0, "UPDATE orders SET inside = 1 WHERE code = :code"
    )
    assert out is not None and out.inside == 0 and out.inside_site_id is None
    assert order(e, "X").inside == 2  # every case was rolled back
    assert not _stale_use(e, "T", one, T0, refund)
    e.dispose()


@pytest.mark.parametrize("kind", KINDS)
def test_a_refused_use_is_decided_again_not_the_batch(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The ledger's own loop: a stale view (someone took a unit since) is re-read and decided again."""
    e = ledger(kind, tmp_path, request)
    add_order(e, "T", 3)
    p = place()
    with e.connect() as c, writer(c).begin():
        real = SqlLedger(c).orders({"T"})["T"]
        c.execute(text("UPDATE orders SET used = 2 WHERE code = 'T'"))

        class Stale(SqlLedger):  # apply_batch reads the order itself: hand it a view older than the row
            def orders(self, codes: set[str], ids: set[int] | None = None) -> dict[str, OrderView]:
                return {"T": replace(real)}

        out = apply_batch(
            Stale(c),
            [(Request("d1", "a", "T", 2, "in", None), p), (Request("d1", "b", "T", 1, "in", None), p)],
            T0,
            render=render,
        )
    assert [(v.reason, v.left) for v in out] == [("QTY_EXCEEDED", 1), ("OK", 0)]
    assert order(e, "T").used == 3
    e.dispose()


def test_postgres_waits_for_the_row_and_decides_on_what_committed(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two workers read the same order; the second's UPDATE waits on the first's row lock, finds the
    units gone once it commits, and that one request is decided again: a verdict, never an error."""
    e = ledger("pg", tmp_path, request)
    add_order(e, "T", 2)
    p = place()
    second: list[str] = []
    with e.connect() as a, writer(a).begin():
        first = apply_batch(SqlLedger(a), [(Request("d1", "a", "T", 1, "in", None), p)], T0, render=render)
        assert first[0].ok

        def other() -> None:
            v = scan(e, T0, "b", "T", device="d2", qty=2)
            second.append(f"{v.reason} {v.left}")

        t = threading.Thread(target=other)
        t.start()
        with e.connect() as watch:
            waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
            wait_for(lambda: watch.execute(text(waiting)).scalar_one() == 1, 20, "the second writer waits")
    t.join(20)
    assert second == ["QTY_EXCEEDED 1"]
    assert order(e, "T").used == 1
    e.dispose()


@pytest.mark.parametrize("kind", KINDS)
def test_contended_order_never_needs_a_batch_retry(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Eight writers on one order: every batch goes through the first time and exactly the stock is sold."""
    e = ledger(kind, tmp_path, request)
    add_order(e, "POOL", 30)
    oks: list[bool] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(8):
            v = scan(e, T0, f"s{i}", "POOL", device=f"dev{n}")  # raises on any failure: no retry here
            with lock:
                oks.append(v.ok)

    ts = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert len(oks) == 64 and sum(oks) == 30
    assert order(e, "POOL").used == 30
    e.dispose()


@pytest.mark.parametrize("kind", KINDS)
def test_a_batch_stamped_before_midnight_committing_after_one_stamped_after_keeps_the_day(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Two workers' batches straddle the site's midnight and commit out of clock order (a few ms of
    skew, or one worker's commit waiting on the other's lock). The day's counter never goes back to
    the earlier day: the late one counts on the day already begun, so the limit still holds on it."""
    e = ledger(kind, tmp_path, request)
    add_order(e, "D", 10, rules={"per_day": 1})
    midnight = at("2026-11-24 00:00")
    assert scan(e, midnight + 1, "a", "D", device="d1").ok  # the new day's one unit
    late = scan(e, midnight - 1, "b", "D", device="d2")  # stamped 23:59:59, committed after
    assert (late.ok, late.reason) == (False, "DAILY_LIMIT")
    assert not scan(e, midnight + 2, "c", "D", device="d1").ok  # never a second unit on the 24th
    o = order(e, "D")
    assert (o.used, o.day_key, o.day_used) == (1, "20261124", 1)
    e.dispose()


@pytest.mark.parametrize("kind", KINDS)
def test_an_entry_charged_a_unit_is_refused_when_its_exit_was_recorded_meanwhile(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A re-entry order: one unit used today and still inside, so a second person pays a unit. If the
    first is seen leaving before that use lands, the entry is a free re-entry now: decided again."""
    e = ledger(kind, tmp_path, request)
    add_order(e, "R", 3, rules={"reentry": True}, used=1, day_key="20261123", day_used=1, inside=1)
    one = Ask("redeem", 1, None, "in")
    charged = _stale_use(e, "R", one, T0, "UPDATE orders SET version = version + 1 WHERE code = :code")
    assert charged is not None and (charged.used, charged.inside) == (2, 2)  # nobody left: a unit
    assert not _stale_use(e, "R", one, T0, "UPDATE orders SET inside = 0 WHERE code = :code")
    e.dispose()


@pytest.mark.parametrize("kind", KINDS)
def test_an_order_of_two_sites_in_two_zones_keeps_one_daily_limit(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Shanghai is already on the 24th while New York is on the 23rd: alternating scans between the two
    must not reset the day's counter each time (it would admit one use per scan, not one per day)."""
    e = ledger(kind, tmp_path, request)
    east, west = add_site(e, "east", "Asia/Shanghai"), add_site(e, "west", "America/New_York")
    add_order(e, "D", 10, rules={"per_day": 1, "sites": [east, west]})
    ny = ZoneInfo("America/New_York")
    now = at("2026-11-24 10:00")  # 21:00 on the 23rd in New York
    assert scan(e, now, "a", "D", where=place(east)).ok
    assert scan(e, now + 60, "b", "D", where=place(west, tz=ny)).reason == "DAILY_LIMIT"
    assert scan(e, now + 120, "c", "D", where=place(east)).reason == "DAILY_LIMIT"
    assert order(e, "D").used == 1
    e.dispose()
