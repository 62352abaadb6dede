# Regression tests for the ledger's trust holes: each names the hole it closes and failed before the fix.
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from gateway.adapters.db.engine import writer
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.adapters.db.repositories.ledger import SqlLedger
from gateway.adapters.mqtt.oled import render
from gateway.domain.requests import Request, person_key, system_key
from gateway.services import adjustments as adjust
from gateway.services.ledger import apply_batch
from tests.gateway.trust_fixtures import (
    add_order,
    add_site,
    at,
    audits,
    count_rows,
    ledger,
    order,
    place,
    redemption_id,
    scan,
)

KINDS = ["sqlite", "postgresql"]
T0 = at("2026-11-23 10:00")


@pytest.fixture
def e(tmp_path: Path, request: pytest.FixtureRequest) -> Engine:
    kind = getattr(request, "param", "sqlite")
    return ledger(kind, tmp_path, request)


@pytest.mark.parametrize("e", KINDS, indirect=True)
def test_hole_1_reused_sid_with_another_request_is_refused(e: Engine) -> None:
    """Hole 1: a re-flashed board restarting at sid 1-1 must not receive the stored OK of the old scan."""
    add_order(e, "OLD", 1)
    assert scan(e, T0, "1-1", "OLD").ok
    again = scan(e, T0 + 60, "1-1", "OLD")  # a genuine retry: the same request
    assert (again.ok, again.reason) == (True, "OK")
    reused = scan(e, T0 + 3600, "1-1", "NEVER-SOLD")  # the same id, another code
    assert (reused.ok, reused.reason, reused.sound) == (False, "SID_REUSED", "error")
    other_qty = scan(e, T0 + 3601, "1-1", "OLD", qty=2)
    assert other_qty.reason == "SID_REUSED"
    assert order(e, "OLD").used == 1
    assert count_rows(e) == 1  # the refusal is not stored under the taken key ...
    assert len(audits(e, "sid_reused")) == 2  # ... but audited


def test_hole_1_reuse_inside_one_batch(e: Engine) -> None:
    """Hole 1: two different requests under one id in the same batch: the second is refused."""
    add_order(e, "A", 5)
    reqs = [Request("d1", "7", "A", 1, "in", None), Request("d1", "7", "A", 3, "in", None)]
    with e.connect() as c, writer(c).begin():
        first, second = apply_batch(SqlLedger(c), [(r, place()) for r in reqs], T0, render=render)
    assert (first.ok, second.reason) == (True, "SID_REUSED")
    assert order(e, "A").used == 1


def test_hole_2_people_devices_and_system_have_separate_key_spaces(e: Engine) -> None:
    """Hole 2: device `web-api` with sid R and REST request_id R by `api` never share a decision."""
    add_order(e, "P", 3)
    person = Request("web-api", "R", "P", 1, "in", None, user="api", key=person_key("api", "R"))
    device = Request("web-api", "R", "UNKNOWN", 1, "in", None)  # a device that calls itself web-api
    with e.connect() as c, writer(c).begin():
        v_person = apply_batch(SqlLedger(c), [(person, place())], T0, render=render)[0]
    with e.connect() as c, writer(c).begin():
        v_device = apply_batch(SqlLedger(c), [(device, place())], T0 + 1, render=render)[0]
    assert (v_person.ok, v_device.reason) == (True, "UNKNOWN_CODE")  # not the person's stored OK
    # A device named `revert` sending the sid a revert row would take cannot break reverts.
    assert scan(e, T0 + 2, "s1", "P", device="d9").ok
    target = redemption_id(e, "d9", "s1")
    assert scan(e, T0 + 3, str(target), "P", device="revert").ok
    assert system_key("revert", target) != f"d:revert/{target}"
    assert adjust.revert(SqlDatabase(e), target, "boss", "test", now=T0 + 4)["reverted"] == target


@pytest.mark.parametrize("e", KINDS, indirect=True)
def test_hole_3_check_is_read_only(e: Engine) -> None:
    """Hole 3: `check` never changes state — not an exit check, not a check before a re-entry."""
    add_order(e, "PB", 2, rules={"passback": True, "reentry": True})
    assert scan(e, T0, "1", "PB").ok
    assert order(e, "PB").inside == 1
    probe = scan(e, T0 + 5, "2", "PB", op="check", dir="out")
    assert probe.ok
    assert order(e, "PB").inside == 1  # an exit check let nobody out
    assert scan(e, T0 + 10, "3", "PB", dir="out").ok
    assert order(e, "PB").inside == 0
    for i in range(3):  # the handheld checks before it redeems; checks never set inside
        assert scan(e, T0 + 20 + i, f"c{i}", "PB", op="check").ok
    assert order(e, "PB").inside == 0
    back = scan(e, T0 + 30, "4", "PB")
    assert (back.ok, back.l1) == (True, "WELCOME BACK")
    assert order(e, "PB").version == 3  # entry, exit, re-entry: the checks wrote nothing


def test_hole_4_reentry_needs_a_recorded_exit(e: Engine) -> None:
    """Hole 4: re-entry without passback admitted anyone on one unit; a re-entry needs an exit first."""
    add_order(e, "RE", 1, rules={"reentry": True})
    assert scan(e, T0, "1", "RE").ok
    second = scan(e, T0 + 10, "2", "RE")
    assert (second.ok, second.reason) == (False, "ALREADY_USED")
    assert scan(e, T0 + 20, "3", "RE", dir="out").ok
    back = scan(e, T0 + 30, "4", "RE")
    assert (back.ok, back.l1) == (True, "WELCOME BACK")
    assert scan(e, T0 + 40, "5", "RE").reason == "ALREADY_USED"
    o = order(e, "RE")
    assert (o.used, o.inside) == (1, 1)
    with pytest.raises(Exception, match="unredeemed"):
        adjust.refund(SqlDatabase(e), "RE", 1, "boss", "try")


def test_hole_5_a_group_passes_one_by_one(e: Engine) -> None:
    """Hole 5: a 5-unit anti-passback ticket lets all five through, then refuses the sixth."""
    add_order(e, "GRP", 5, rules={"passback": True})
    assert all(scan(e, T0 + i, f"g{i}", "GRP").ok for i in range(5))
    sixth = scan(e, T0 + 10, "g5", "GRP")
    assert (sixth.ok, sixth.reason) == (False, "PASSBACK")
    assert order(e, "GRP").inside == 5
    assert scan(e, T0 + 20, "o1", "GRP", dir="out", qty=2).ok
    assert order(e, "GRP").inside == 3


def test_hole_6_exits_are_always_let_out(e: Engine) -> None:
    """Hole 6: leaving at 18:05 an order valid 09:00-18:00 is let out; tomorrow's entry is not PASSBACK."""
    site = add_site(e)
    add_order(e, "DAY", 2, site_id=site, rules={"passback": True, "hours": [540, 1080]})
    here = place(site)
    assert scan(e, at("2026-11-23 10:00"), "1", "DAY", where=here).ok
    out = scan(e, at("2026-11-23 18:05"), "2", "DAY", dir="out", where=here)
    assert (out.ok, out.l1) == (True, "GOODBYE")
    assert order(e, "DAY").inside == 0
    assert scan(e, at("2026-11-24 10:00"), "3", "DAY", where=here).ok
    # Cancelled (or refunded, expired, closed): still let out.
    add_order(e, "GONE", 1, status="cancelled", inside=1, rules={"passback": True})
    assert scan(e, T0, "4", "GONE", dir="out").ok
    assert order(e, "GONE").inside == 0


@pytest.mark.parametrize("e", KINDS, indirect=True)
def test_hole_7_undo_restores_the_day_it_counted_on(e: Engine) -> None:
    """Hole 7: per-day limit 1: use day 1, use day 2, revert day 1 -> a second use on day 2 is refused."""
    site = add_site(e)
    add_order(e, "PK", 10, kind="pack", site_id=site, rules={"per_day": 1})
    here = place(site)
    assert scan(e, at("2026-11-23 10:00"), "1", "PK", where=here).ok
    assert scan(e, at("2026-11-24 10:00"), "2", "PK", where=here).ok
    adjust.revert(SqlDatabase(e), redemption_id(e, "d1", "1"), "boss", "mistake", now=at("2026-11-24 11:00"))
    again = scan(e, at("2026-11-24 12:00"), "3", "PK", where=here)
    assert (again.ok, again.reason) == (False, "DAILY_LIMIT")
    o = order(e, "PK")
    assert (o.used, o.day_used, o.day_key) == (1, 1, "20261124")


def test_hole_7_undo_of_an_old_entry_keeps_who_is_inside(e: Engine) -> None:
    """Hole 7: reverting an entry whose person already left must not clear today's inside count."""
    add_order(e, "IN", 2, rules={"passback": True})
    assert scan(e, T0, "1", "IN").ok
    assert scan(e, T0 + 60, "2", "IN", dir="out").ok
    assert scan(e, T0 + 120, "3", "IN").ok  # the second unit enters and stays
    adjust.revert(SqlDatabase(e), redemption_id(e, "d1", "1"), "boss", "double scan", now=T0 + 200)
    o = order(e, "IN")
    assert (o.used, o.inside) == (1, 1)


def test_hole_7_annul_restores_the_last_use(e: Engine) -> None:
    """Hole 7: annul then rescan of a pack with a minimum interval is not TOO_SOON."""
    add_order(e, "GAP", 5, kind="pack", rules={"min_interval_s": 3600})
    assert scan(e, T0, "1", "GAP").ok
    assert scan(e, T0 + 4000, "2", "GAP").ok
    assert scan(e, T0 + 4010, "3", op="annul", ref="2").ok
    assert order(e, "GAP").last_used_at == T0  # the first use is the last one again
    rescan = scan(e, T0 + 4020, "4", "GAP")
    assert (rescan.ok, rescan.reason) == (True, "OK")
    assert scan(e, T0 + 4030, "5", op="annul", ref="4").ok
    assert scan(e, T0 + 4040, "6", op="annul", ref="1").reason == "ANNUL_REFUSED"  # too late
    adjust.revert(SqlDatabase(e), redemption_id(e, "d1", "1"), "boss", "all wrong", now=T0 + 4050)
    o = order(e, "GAP")
    assert (o.used, o.last_used_at) == (0, None)


def test_hole_10_dates_beyond_the_calendar_still_decide(e: Engine) -> None:
    """Hole 10: valid_until 0001-01-01 at a negative-offset site used to raise OverflowError."""
    site = add_site(e, "ny", "America/New_York")
    add_order(e, "ANCIENT", 1, site_id=site, valid_until=-62135596800.0)
    from zoneinfo import ZoneInfo

    v = scan(e, T0, "1", "ANCIENT", where=place(site, tz=ZoneInfo("America/New_York")))
    assert (v.ok, v.reason) == (False, "EXPIRED")


@pytest.mark.parametrize("e", KINDS, indirect=True)
def test_hole_7_undoing_two_entries_leaves_no_ghost_inside(e: Engine) -> None:
    """Hole 7: revert A then B (no exits) left one unit counted inside; and one exit counts once."""
    add_order(e, "TWO", 3, rules={"passback": True, "reentry": True})
    assert scan(e, T0, "a", "TWO").ok
    assert scan(e, T0 + 1, "b", "TWO").ok
    adjust.revert(SqlDatabase(e), redemption_id(e, "d1", "a"), "boss", "x", now=T0 + 2)
    adjust.revert(SqlDatabase(e), redemption_id(e, "d1", "b"), "boss", "x", now=T0 + 3)
    assert (order(e, "TWO").used, order(e, "TWO").inside) == (0, 0)
    assert scan(e, T0 + 10, "c", "TWO").ok
    assert scan(e, T0 + 11, "d", "TWO").ok
    assert scan(e, T0 + 12, "x", "TWO", dir="out").ok  # one of the two leaves
    assert scan(e, T0 + 13, "u1", op="annul", ref="d").ok
    assert scan(e, T0 + 14, "u2", op="annul", ref="c").ok
    assert (order(e, "TWO").used, order(e, "TWO").inside) == (0, 0)
