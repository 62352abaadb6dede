# Table-driven tests of the pure redemption decision: every reason code and what the OLED shows.
from __future__ import annotations

from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest

from gateway.rules import OrderView, decide, system_denial

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
    d = decide(order, qty, site, NOW, TZ)
    assert (d.reason, d.ok, d.consume, d.left) == (reason, ok, consume, left), name
    assert 0 < len(d.l1) <= 16 and len(d.l2) <= 16, (d.l1, d.l2)
    assert d.sound == ("ok" if ok else "attention" if reason == "QTY_EXCEEDED" else "deny")


def test_screens_say_why() -> None:
    used = replace(BASE, used=5, last_used_at=NOW - 120, last_used_gate="Gate 3")
    d = decide(used, 1, 1, NOW, TZ)
    assert (d.l1, d.l2) == ("ALREADY USED", "07:58 Gate 3")
    assert d.detail == "all 5 used, last 07:58 at Gate 3"
    yesterday = decide(replace(used, last_used_at=NOW - 86400), 1, 1, NOW, TZ)
    assert yesterday.l2 == "11-22 08:00 Gate"  # cut to the 16 characters a line holds
    expired = decide(replace(BASE, valid_until=NOW - 86400 * 2), 1, 1, NOW, TZ)
    assert (expired.l1, expired.l2) == ("EXPIRED", "since 2026-11-21")
    soon = decide(replace(BASE, valid_from=NOW + 86400), 1, 1, NOW, TZ)
    assert soon.l2 == "from 11-24 08:00"
    ok = decide(BASE, 1, 1, NOW, TZ)
    assert (ok.l1, ok.l2, ok.detail) == ("OK VIP Day Pass", "4 of 5 left", "redeemed 1, 4 of 5 left")
    single = decide(replace(BASE, quantity=1, title="Concert 演唱会"), 1, 1, NOW, TZ)
    assert (single.l1, single.l2) == ("OK Concert", "welcome")  # the 8x8 font has no CJK glyphs


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
    assert (d.ok, d.reason, d.sound, d.consume, d.detail) == (False, reason, sound, 0, "why")
    assert len(d.l1) <= 16 and len(d.l2) <= 16
