# Table-driven tests of the pure redemption decision: every reason code and what the OLED shows.
from __future__ import annotations

from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest

from gateway.adapters.mqtt.contract import Verdict
from gateway.adapters.mqtt.oled import render
from gateway.domain.decisions import Ask, Decision, OrderView, decide, system_denial


def shown(d: Decision) -> Verdict:
    """The decision as the scanner shows it (lines fitted to the OLED, the sound picked)."""
    return render("t", d)


TZ = ZoneInfo("Asia/Shanghai")
NOW = 1795392000.0  # 2026-11-23 00:00 UTC = 08:00 in Shanghai
BASE = OrderView(
    id=1,
    code="C",
    title="VIP Day Pass",
    quantity=5,
    used=0,
    refunded=0,
    status="active",
    site_id=1,
    valid_from=None,
    valid_until=None,
    last_used_at=None,
    last_used_gate=None,
)

CASES = [
    # name, order changes (None = no order), qty, device site, reason, ok, consume, left
    ("unknown code", None, 1, 1, "UNKNOWN_CODE", False, 0, None),
    ("first use", {}, 1, 1, "OK", True, 1, 4),
    ("several units", {}, 3, 1, "OK", True, 3, 2),
    ("all remaining", {"used": 2}, 3, 1, "OK", True, 3, 0),
    ("more than left", {"used": 3}, 3, 1, "QTY_EXCEEDED", False, 0, 2),
    (
        "used up",
        {"used": 5, "last_used_at": NOW - 60, "last_used_gate": "Gate 3"},
        1,
        1,
        "ALREADY_USED",
        False,
        0,
        0,
    ),
    ("refunded order", {"status": "refunded"}, 1, 1, "REFUNDED", False, 0, 0),
    ("all units refunded", {"refunded": 5}, 1, 1, "REFUNDED", False, 0, 0),
    ("part refunded, rest used", {"refunded": 2, "used": 3}, 1, 1, "ALREADY_USED", False, 0, 0),
    ("part refunded, some left", {"refunded": 2, "used": 1}, 2, 1, "OK", True, 2, 0),
    ("cancelled", {"status": "cancelled"}, 1, 1, "CANCELLED", False, 0, 0),
    ("other site", {}, 1, 2, "WRONG_SITE", False, 0, 5),
    ("device without site", {}, 1, None, "WRONG_SITE", False, 0, 5),
    ("order for every site", {"site_id": None}, 1, 7, "OK", True, 1, 4),
    ("not yet valid", {"valid_from": NOW + 3600}, 1, 1, "NOT_YET_VALID", False, 0, 5),
    ("valid from now", {"valid_from": NOW}, 1, 1, "OK", True, 1, 4),
    ("expired", {"valid_until": NOW - 1}, 1, 1, "EXPIRED", False, 0, 5),
    ("expires at this instant", {"valid_until": NOW}, 1, 1, "EXPIRED", False, 0, 5),
    ("inside window", {"valid_from": NOW - 10, "valid_until": NOW + 10}, 1, 1, "OK", True, 1, 4),
    ("refund beats expiry", {"status": "refunded", "valid_until": NOW - 1}, 1, 1, "REFUNDED", False, 0, 0),
]


@pytest.mark.parametrize(("name", "changes", "qty", "site", "reason", "ok", "consume", "left"), CASES)
def test_decide(
    name: str,
    changes: dict[str, object] | None,
    qty: int,
    site: int | None,
    reason: str,
    ok: bool,
    consume: int,
    left: int | None,
) -> None:
    order = None if changes is None else replace(BASE, **changes)  # type: ignore[arg-type]
    d = decide(order, Ask(qty=qty), site, "Gate 1", NOW, TZ)
    assert (d.reason, d.ok, d.consume, d.left) == (reason, ok, consume, left), name
    assert 0 < len(shown(d).l1) <= 16 and len(shown(d).l2) <= 16, (shown(d).l1, shown(d).l2)
    assert shown(d).sound == ("ok" if ok else "attention" if reason == "QTY_EXCEEDED" else "deny")


def test_screens_say_why() -> None:
    used = replace(BASE, used=5, last_used_at=NOW - 120, last_used_gate="Gate 3")
    d = decide(used, Ask(), 1, "Gate 1", NOW, TZ)
    assert (shown(d).l1, shown(d).l2) == ("ALREADY USED", "07:58 Gate 3")
    assert d.detail == "all 5 used, last 07:58 at Gate 3"
    yesterday = decide(replace(used, last_used_at=NOW - 86400), Ask(), 1, "Gate 1", NOW, TZ)
    assert shown(yesterday).l2 == "11-22 08:00 Gate"  # cut to the 16 characters a line holds
    expired = decide(replace(BASE, valid_until=NOW - 86400 * 2), Ask(), 1, "Gate 1", NOW, TZ)
    assert (shown(expired).l1, shown(expired).l2) == ("EXPIRED", "since 2026-11-21")
    soon = decide(replace(BASE, valid_from=NOW + 86400), Ask(), 1, "Gate 1", NOW, TZ)
    assert shown(soon).l2 == "from 11-24 08:00"
    ok = decide(BASE, Ask(), 1, "Gate 1", NOW, TZ)
    assert (shown(ok).l1, shown(ok).l2, ok.detail) == (
        "OK VIP Day Pass",
        "4 of 5 left",
        "redeemed 1, 4 of 5 left",
    )
    single = decide(replace(BASE, quantity=1, title="Concert 演唱会"), Ask(), 1, "Gate 1", NOW, TZ)
    assert (shown(single).l1, shown(single).l2) == ("OK Concert", "welcome")  # the 8x8 font has no CJK glyphs


@pytest.mark.parametrize(
    ("reason", "sound"),
    [
        ("MALFORMED", "error"),
        ("RATE_LIMITED", "attention"),
        ("UNKNOWN_DEVICE", "error"),
        ("INTERNAL", "error"),
    ],
)
def test_system_denials(reason: str, sound: str) -> None:
    d = system_denial(reason, "why")
    assert (d.ok, d.reason, shown(d).sound, d.consume, d.detail) == (False, reason, sound, 0, "why")
    assert len(shown(d).l1) <= 16 and len(shown(d).l2) <= 16


# --- issue 4: packs, vouchers, masks, scope, entry/exit (NOW is Monday 2026-11-23 08:00 in Shanghai) ---
TODAY = "20261123"
PACK = replace(BASE, title="Car Wash", kind="pack", quantity=5)
VOUCHER = replace(BASE, title="Voucher 100", kind="value", quantity=10000)

RULE_CASES = [
    # name, order, ask, site, gate, reason, ok, consume, left
    ("pack: first use", PACK, Ask(), 1, "G", "OK", True, 1, 4),
    (
        "pack: too soon",
        replace(PACK, used=1, last_used_at=NOW - 60, rules={"min_interval_s": 3600}),
        Ask(),
        1,
        "G",
        "TOO_SOON",
        False,
        0,
        4,
    ),
    (
        "pack: interval passed",
        replace(PACK, used=1, last_used_at=NOW - 3600, rules={"min_interval_s": 3600}),
        Ask(),
        1,
        "G",
        "OK",
        True,
        1,
        3,
    ),
    (
        "pack: daily limit hit",
        replace(PACK, used=2, day_key=TODAY, day_used=2, rules={"per_day": 2}),
        Ask(),
        1,
        "G",
        "DAILY_LIMIT",
        False,
        0,
        3,
    ),
    (
        "pack: limit resets next day",
        replace(PACK, used=2, day_key="20261122", day_used=2, rules={"per_day": 2}),
        Ask(),
        1,
        "G",
        "OK",
        True,
        1,
        2,
    ),
    (
        "pack: qty over today's room",
        replace(PACK, used=1, day_key=TODAY, day_used=1, rules={"per_day": 2}),
        Ask(qty=2),
        1,
        "G",
        "DAILY_LIMIT",
        False,
        0,
        4,
    ),
    ("voucher: pay part", VOUCHER, Ask(amt=2550), 1, "G", "OK", True, 2550, 7450),
    ("voucher: whole balance", replace(VOUCHER, used=9000), Ask(amt=1000), 1, "G", "OK", True, 1000, 0),
    (
        "voucher: over balance",
        replace(VOUCHER, used=9000),
        Ask(amt=1001),
        1,
        "G",
        "LOW_BALANCE",
        False,
        0,
        1000,
    ),
    ("voucher: empty", replace(VOUCHER, used=10000), Ask(amt=1), 1, "G", "LOW_BALANCE", False, 0, 0),
    ("voucher: no amount", VOUCHER, Ask(), 1, "G", "AMOUNT_NEEDED", False, 0, 10000),
    ("weekdays only, Monday", replace(BASE, rules={"days": "1111100"}), Ask(), 1, "G", "OK", True, 1, 4),
    (
        "weekends only, Monday",
        replace(BASE, rules={"days": "0000011"}),
        Ask(),
        1,
        "G",
        "OUTSIDE_HOURS",
        False,
        0,
        5,
    ),
    (
        "opening hours, 08:00 before 09:00",
        replace(BASE, rules={"hours": [540, 1080]}),
        Ask(),
        1,
        "G",
        "OUTSIDE_HOURS",
        False,
        0,
        5,
    ),
    ("opening hours, inside", replace(BASE, rules={"hours": [420, 1080]}), Ask(), 1, "G", "OK", True, 1, 4),
    (
        "overnight hours 22-09 at 08:00",
        replace(BASE, rules={"hours": [1320, 540]}),
        Ask(),
        1,
        "G",
        "OK",
        True,
        1,
        4,
    ),
    (
        "overnight, started on Sunday only",
        replace(BASE, rules={"hours": [1320, 540], "days": "0000001"}),
        Ask(),
        1,
        "G",
        "OK",
        True,
        1,
        4,
    ),
    (
        "overnight, started on Saturday only",
        replace(BASE, rules={"hours": [1320, 540], "days": "0000010"}),
        Ask(),
        1,
        "G",
        "OUTSIDE_HOURS",
        False,
        0,
        5,
    ),
    (
        "several sites, allowed",
        replace(BASE, site_id=None, rules={"sites": [1, 3]}),
        Ask(),
        3,
        "G",
        "OK",
        True,
        1,
        4,
    ),
    (
        "several sites, not this one",
        replace(BASE, site_id=None, rules={"sites": [1, 3]}),
        Ask(),
        2,
        "G",
        "WRONG_SITE",
        False,
        0,
        5,
    ),
    ("gate scope", replace(BASE, rules={"gates": ["VIP"]}), Ask(), 1, "Main", "WRONG_SITE", False, 0, 5),
    ("gate scope, right gate", replace(BASE, rules={"gates": ["VIP"]}), Ask(), 1, "VIP", "OK", True, 1, 4),
    ("passback: enter", replace(BASE, rules={"passback": True}), Ask(), 1, "G", "OK", True, 1, 4),
    (
        "passback: all units inside already",
        replace(BASE, used=5, inside=5, rules={"passback": True}),
        Ask(),
        1,
        "G",
        "PASSBACK",
        False,
        0,
        0,
    ),
    (
        "passback: the second of a group of five enters (hole 5)",
        replace(BASE, used=1, inside=1, rules={"passback": True}),
        Ask(),
        1,
        "G",
        "OK",
        True,
        1,
        3,
    ),
    (
        "exit costs nothing",
        replace(BASE, used=1, inside=1, rules={"passback": True}),
        Ask(direction="out"),
        1,
        "G",
        "OK",
        True,
        0,
        4,
    ),
    (
        "exit of a used-up ticket",
        replace(BASE, used=5, inside=5),
        Ask(direction="out"),
        1,
        "G",
        "OK",
        True,
        0,
        0,
    ),
    (
        "re-entry same day",
        replace(BASE, quantity=1, used=1, day_key=TODAY, day_used=1, rules={"reentry": True}),
        Ask(),
        1,
        "G",
        "OK",
        True,
        0,
        0,
    ),
    (
        "no re-entry next day",
        replace(BASE, quantity=1, used=1, day_key="20261122", day_used=1, rules={"reentry": True}),
        Ask(),
        1,
        "G",
        "ALREADY_USED",
        False,
        0,
        0,
    ),
    ("check changes nothing", BASE, Ask(op="check", qty=3), 1, "G", "OK", True, 0, 5),
    (
        "check of a used ticket says why",
        replace(BASE, used=5),
        Ask(op="check"),
        1,
        "G",
        "ALREADY_USED",
        False,
        0,
        0,
    ),
]


@pytest.mark.parametrize(
    ("name", "order", "ask", "site", "gate", "reason", "ok", "consume", "left"), RULE_CASES
)
def test_rules(
    name: str,
    order: OrderView,
    ask: Ask,
    site: int,
    gate: str,
    reason: str,
    ok: bool,
    consume: int,
    left: int,
) -> None:
    d = decide(order, ask, site, gate, NOW, TZ)
    assert (d.reason, d.ok, d.consume, d.left) == (reason, ok, consume, left), (name, d)
    assert 0 < len(shown(d).l1) <= 16 and len(shown(d).l2) <= 16, (shown(d).l1, shown(d).l2)


def test_rule_screens() -> None:
    soon = decide(
        replace(PACK, used=1, last_used_at=NOW - 60, rules={"min_interval_s": 3600}), Ask(), 1, "G", NOW, TZ
    )
    assert (shown(soon).l1, shown(soon).l2) == ("TOO SOON", "next at 08:59")
    hours = decide(replace(BASE, rules={"hours": [540, 1080], "days": "1111100"}), Ask(), 1, "G", NOW, TZ)
    assert (shown(hours).l1, shown(hours).l2, hours.detail) == (
        "OUTSIDE HOURS",
        "09:00-18:00",
        "valid Mon-Fri 09:00-18:00",
    )
    pay = decide(VOUCHER, Ask(amt=2550), 1, "G", NOW, TZ)
    assert (shown(pay).l1, shown(pay).l2, pay.extra) == (
        "OK -25.50",
        "bal 74.50",
        {"kind": "value", "bal": 7450},
    )
    check = decide(replace(PACK, rules={"per_day": 2}), Ask(op="check"), 1, "G", NOW, TZ)
    assert check.extra == {"kind": "pack", "check": True, "max": 2, "title": "Car Wash"}
    assert (shown(check).l1, shown(check).l2) == ("Car Wash", "5 left")
    enter = decide(replace(BASE, rules={"passback": True}), Ask(), 1, "G", NOW, TZ)
    leave = decide(
        replace(BASE, used=1, inside=1, rules={"passback": True}), Ask(direction="out"), 1, "G", NOW, TZ
    )
    assert (enter.inside, leave.inside, shown(leave).l1) == (1, -1, "GOODBYE")
