# How an order's state moves: a decision applied, a redemption undone, and whether it may be undone.
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from gateway.domain.decisions import Decision, OrderView, system_denial
from gateway.domain.requests import Place
from gateway.domain.validity import counting_day, day_key

ANNUL_WINDOW_S = 120.0


def after(order: OrderView, d: Decision, place: Place, now: float) -> OrderView:
    """The order once decision `d` is applied (units, per-day counter, units inside)."""
    changes: dict[str, Any] = {}
    if d.consume:
        today = counting_day(now, place.tz, order.day_key)
        changes.update(
            used=order.used + d.consume,
            last_used_at=now,
            last_used_gate=place.gate,
            day_key=today,
            day_used=(order.day_used if order.day_key == today else 0) + d.consume,
        )
    if d.inside:
        inside = max(0, order.inside + d.inside)
        site = order.inside_site_id if d.inside < 0 else place.site_id
        changes.update(inside=inside, inside_site_id=site if inside else None)
    return order.but(**changes) if changes else order


@dataclass(frozen=True, slots=True)
class Use:
    """A decision as an atomic change of an order's counters, with the conditions it was decided under.

    The database applies it with one conditional update (`used = used + consume WHERE used + refunded
    + consume <= quantity AND ...`): it takes effect only while every condition below still holds on
    the row as it is at that moment, so two writers deciding from the same read can never both take
    the last unit. The rules that concurrent scans cannot change (site, gate, validity, hours, kind)
    are not repeated here: the decision read them in the same transaction.
    """

    order_id: int
    consume: int  # units (cents for a voucher) taken: used and the day's count grow by it
    inside: int  # change to the units inside (+ entered, - left)
    now: float
    gate: str
    site_id: int | None  # where units entered (inside_site_id)
    today: str  # the day the use counts on (validity.counting_day): the row's day may not be later
    active: bool  # the order must still be active (an entry; exits are always let out)
    per_day: int | None = None  # consume: the day's count may not pass this
    min_gap: float | None = None  # consume: the last use is at least this many seconds before `now`
    reentry: bool = False  # an entry without a unit: that many of today's units were seen leaving
    charged: bool = False  # a paid entry of a re-entry order: it was no re-entry (too few had left)


def use(order: OrderView, d: Decision, place: Place, now: float) -> Use | None:
    """The conditional change decision `d` makes to `order` (None: it changes nothing).

    Mirrors the checks of `decisions.decide` that other writers can invalidate between our read and
    our write: units left, the day's limit, the minimum interval, a re-entry's exited units (and for a
    paid entry that there were too few of them), and for an exit the units inside it lets out.
    """
    moved = d.inside or 0
    if not d.ok or (not d.consume and not moved):
        return None
    rules = order.rules or {}
    entry = moved > 0 or d.consume > 0
    ticket = order.kind != "value"
    return Use(
        order_id=order.id,
        consume=d.consume,
        inside=moved,
        now=now,
        gate=place.gate,
        site_id=place.site_id,
        today=counting_day(now, place.tz, order.day_key),
        active=entry,
        per_day=int(rules["per_day"]) if ticket and d.consume and rules.get("per_day") else None,
        min_gap=float(rules["min_interval_s"])
        if ticket and d.consume and rules.get("min_interval_s")
        else None,
        reentry=moved > 0 and not d.consume,
        charged=moved > 0 and d.consume > 0 and bool(rules.get("reentry")),
    )


def undoable(ref: Any) -> str | None:
    """None when the recorded redemption may be undone, else why not (entries that succeeded only)."""
    if ref is None:
        return "no such scan from this device"
    if not ref.ok or ref.op != "redeem":
        return "that scan redeemed nothing"
    if ref.undone:
        return "already undone"
    return None


def annul_decision(ref: Any, now: float, window: float) -> Decision | None:
    """None when the referenced redemption may be annulled, else the refusal."""
    why = undoable(ref)
    if why is None and now - ref.server_time > window:
        why = f"too late: annul within {int(window)} s"
    return None if why is None else system_denial("ANNUL_REFUSED", why)


def undone_units(ref: Any) -> int:
    """The units an undo of redemption `ref` gives back."""
    return int(ref.qty) if ref.op == "redeem" else 0


def reverted(
    order: OrderView,
    ref: Any,
    tz: tzinfo,
    flows_after: Sequence[tuple[int, int | None]],
    last_use: tuple[float | None, str | None] | None,
) -> OrderView:
    """The order once redemption `ref` is annulled or reverted: exactly what it changed comes back.

    - its units (`qty`) return; the per-day count drops only if the order still counts that day;
    - the units it moved inside leave unless they were seen leaving since (`still_inside`, given the
      moves recorded after it, `flows_after`);
    - the last use becomes `last_use`, the latest remaining use (None: leave it, a later use counts).
    """
    units = undone_units(ref)
    ref_day = ref.day_key or day_key(ref.server_time, tz)
    day_used = max(0, order.day_used - units) if order.day_key == ref_day else order.day_used
    inside = order.inside
    if ref.inside_delta > 0:
        inside = max(0, inside - still_inside(int(ref.inside_delta), int(ref.id), flows_after))
    changes: dict[str, Any] = {
        "used": order.used - units,
        "day_used": day_used,
        "inside": inside,
        "inside_site_id": order.inside_site_id if inside else None,
    }
    if last_use is not None:
        changes["last_used_at"], changes["last_used_gate"] = last_use
    return order.but(**changes)


def still_inside(entered: int, entry_id: int, flows_after: Sequence[tuple[int, int | None]]) -> int:
    """How many of entry `entry_id`'s `entered` people are still in, given the moves after it.

    `flows_after`: (units moved, id of the entry an undo undid — None for entries and exits), in order.
    Every row records what it moved (`inside_delta`: entries +, exits and undos -). An exit goes first
    to the people of later entries still counted (latest in, first out), the rest to this entry's
    people. An undo only ever takes out the people of the entry it undid: a later entry's undo shrinks
    the later people, an older entry's undo does not concern this one. Each outflow is credited once,
    and an undo row records what it took out, so undoing several entries never leaves a ghost inside
    nor lets one exit count twice.
    """
    later = 0  # people of later entries still counted
    gone = 0  # of this entry's (or older) people
    for delta, undid in flows_after:
        if delta > 0:
            later += delta
        elif undid is None:
            theirs = min(later, -delta)
            later -= theirs
            gone += -delta - theirs
        elif undid > entry_id:
            later -= min(later, -delta)
    return max(0, entered - gone)
