# The pure order-state rules: who is still inside after an entry, what may be undone, the annul window.
from __future__ import annotations

from dataclasses import fields, replace
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest

from gateway.domain.decisions import OrderView
from gateway.domain.order_state import annul_decision, reverted, still_inside, undoable

UTC = ZoneInfo("UTC")


def ref(**kw: object) -> SimpleNamespace:
    base: dict[str, object] = {
        "id": 10,
        "ok": True,
        "op": "redeem",
        "undone": False,
        "qty": 2,
        "server_time": 1000.0,
        "day_key": "2026-11-23",
        "inside_delta": 2,
    }
    return SimpleNamespace(**{**base, **kw})


def test_an_exit_leaves_with_the_latest_entry_first() -> None:
    # 2 in (this entry), then 1 in later, then 1 out: the later one left, both of ours are still in.
    assert still_inside(2, 10, [(1, None), (-1, None)]) == 2
    # a second exit takes one of ours
    assert still_inside(2, 10, [(1, None), (-1, None), (-1, None)]) == 1


def test_an_undo_takes_out_only_its_own_entry() -> None:
    # a later entry (id 12) undone: its people go, ours stay; an older entry's undo does not concern us
    assert still_inside(2, 10, [(1, None), (-1, 12), (-1, None)]) == 1
    assert still_inside(2, 10, [(-1, 5)]) == 2


def test_only_a_successful_entry_not_undone_may_be_undone() -> None:
    assert undoable(None) is not None
    assert undoable(ref(ok=False)) == "that scan redeemed nothing"
    assert undoable(ref(op="exit")) == "that scan redeemed nothing"
    assert undoable(ref(undone=True)) == "already undone"
    assert undoable(ref()) is None


def test_annul_is_refused_after_the_window() -> None:
    assert annul_decision(ref(), 1000.0 + 120, 120) is None
    late = annul_decision(ref(), 1000.0 + 121, 120)
    assert late is not None and late.reason == "ANNUL_REFUSED" and not late.ok


def test_reverted_gives_back_exactly_what_the_redemption_changed() -> None:
    order = OrderView(1, "C", "C", 5, 3, 0, "paid", None, None, None, 1000.0, "G1", day_key="2026-11-23",
                      day_used=3, inside=3, inside_site_id=7)  # fmt: skip
    new = reverted(order, ref(), UTC, [(1, None)], (900.0, "G0"))
    assert (new.used, new.day_used, new.inside, new.inside_site_id) == (1, 1, 1, 7)
    assert (new.last_used_at, new.last_used_gate) == (900.0, "G0")
    kept = reverted(order, ref(day_key="2026-11-22", inside_delta=0), UTC, [], None)
    assert (kept.used, kept.day_used, kept.inside, kept.last_used_at) == (1, 3, 3, 1000.0)


def test_an_order_view_but_is_dataclasses_replace() -> None:
    o = OrderView(
        7, "C", "T", 5, 1, 0, "active", 3, 1.0, 2.0, 0.5, "g", "pass", {"per_day": 2}, "20261201", 1, 1, 3, 4
    )
    for f in fields(OrderView):
        changed = {f.name: getattr(o, f.name) if f.name == "rules" else None}
        assert o.but(**changed) == replace(o, **changed)
    assert o.but() == o and o.but(version=5, used=2) == replace(o, version=5, used=2)
    with pytest.raises(TypeError):
        o.but(colour="red")
