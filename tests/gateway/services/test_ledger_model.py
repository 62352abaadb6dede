# Model-based test: a reference model of the redemption rules, written from the spec, drives the real ledger.
"""A hypothesis state machine sends redeem / check / exit / annul / retry requests from several devices
through the real `apply_batch`, plus supervisor reverts, refunds and cancels, while time moves in small
steps, across opening hours and across local midnight. A small model of the rules (written from the
rules, not from the ledger's code) predicts every verdict and every counter; after every step the
orders in the database must equal the model's, and every stored verdict must replay identically.

The model lives in this file on purpose: it must stay independent of `gateway/domain/decisions.py` and
`gateway/services/ledger.py`, so that the two can disagree when one of them is wrong.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine, select

from gateway.adapters.db.engine import writer
from gateway.adapters.db.models import Order, Redemption, Site
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.adapters.db.repositories.ledger import SqlLedger
from gateway.adapters.mqtt.contract import Verdict
from gateway.adapters.mqtt.oled import render
from gateway.domain.errors import Conflict
from gateway.services.adjustments import cancel, refund, revert
from gateway.services.catalog import Kind, RulesIn
from gateway.services.ledger import Place, Request, apply_batch
from gateway.services.orders import OrderIn, create_orders
from gateway.services.sites import SiteIn, create_site
from tests.gateway.services.test_ledger import engine_for

ANNUL_WINDOW_S = 120.0
HOURS = (9 * 60, 18 * 60)  # the opening hours of the order `hours`, minutes after local midnight
_SEQ = itertools.count()
# What the runs reached (op/dir/reason, re-entries, undos): the test fails if a rule was never exercised.
SEEN: Counter[str] = Counter()

# (time zone, local start). Shanghai has a fixed offset; New York starts the day before a DST change.
STARTS = [
    ("Asia/Shanghai", (2026, 3, 5, 9, 20)),  # a Thursday
    ("America/New_York", (2026, 3, 7, 9, 20)),  # Saturday; clocks go forward on Sunday 02:00
    ("America/New_York", (2026, 10, 31, 9, 20)),  # Saturday; clocks go back on Sunday 02:00
]

# name: (kind, quantity, own site, rules, valid_from offset s, valid_until offset s)
ORDERS: dict[str, tuple[Kind, int, str | None, dict[str, Any], int | None, int | None]] = {
    "plain": ("ticket", 3, "a", {}, 900, None),
    "pb5": ("ticket", 5, None, {"passback": True}, None, None),
    "re": ("ticket", 2, None, {"reentry": True, "gates": ["G1"]}, None, 2 * 86400),
    "repb": ("ticket", 3, "a", {"reentry": True, "passback": True}, None, None),
    "pack": ("pack", 5, None, {"per_day": 1, "min_interval_s": 3600}, None, None),
    # Its own site is b, but rules.sites (a) wins; open 09:00-18:00, closed on Sundays.
    "hours": (
        "ticket",
        4,
        "b",
        {"passback": True, "hours": "09:00-18:00", "days": "1111110", "sites": ["a"]},
        None,
        None,
    ),
}
# The rich orders first: hypothesis draws the first choices most often.
NAMES = ["repb", "pack", "re", "pb5", "hours", "plain", "unknown"]
SHOP_ORDER = ["plain", "hours", "pb5", "re", "pack", "repb"]  # refunds and cancels: rich orders last
# (site, gate) of each device
DEVICES = [("a", "G1"), ("a", "G2"), ("b", "G1")]

# Local times the clock may jump to (the next occurrence): around midnight and the opening hours.
JUMPS = [(18, 5, 0), (9, 0, 30), (0, 0, 30), (17, 59, 30), (23, 59, 50), (8, 59, 30), (12, 0, 0), (1, 30, 0)]
# Small steps (the annul window, minimum intervals) and whole days, the most telling first.
# Requests may come after a pause of their own, so time moves in every run, whatever rules it picks.
WAIT = st.sampled_from([0, 30, 86400, 3601, 121, 600])
# (device, order, units, pause before)
ASK = st.tuples(st.integers(0, 2), st.sampled_from(NAMES), st.integers(1, 3), WAIT)
TICKS = [30, 86400, 1, 3601, 119, 121, 5, 61, 300, 1800, 3599, 7200, 100]


# ---------------------------------------------------------------- the reference model


@dataclass
class MOrder:
    code: str
    kind: str
    q: int
    site: int | None
    sites: list[int] | None
    gates: list[str] | None
    days: str | None
    hours: tuple[int, int] | None
    gap: int | None
    per_day: int | None
    passback: bool
    reentry: bool
    valid_from: float | None
    valid_until: float | None
    u: int = 0
    r: int = 0
    status: str = "active"
    inside: int = 0
    day_key: str | None = None
    day_used: int = 0
    last_used_at: float | None = None

    @property
    def left(self) -> int:
        return self.q - self.u - self.r

    @property
    def tracks(self) -> bool:
        return self.kind != "value" and (self.passback or self.reentry)


@dataclass
class Rec:
    """One recorded (non-check) request and what it did."""

    seq: int
    dev: int
    req: Request
    verdict: Verdict
    what: str  # entry | exit | annul | unknown
    code: str | None
    at: float
    day: str
    consumed: int = 0
    entered: int = 0
    let_out: int = 0
    taken_out: int = 0  # when undone: the units its undo took out of the count inside
    undo_seq: int = -1  # when undone: where in the ledger's order the undo happened
    undone: bool = False
    rid: int | None = None


def fingerprint(r: Request) -> tuple[Any, ...]:
    return (r.op, r.code, r.qty, r.amt, r.direction, r.ref)


def local_day(now: float, tz: tzinfo) -> str:
    return datetime.fromtimestamp(now, tz).strftime("%Y%m%d")


def entry_decision(o: MOrder, site: int, gate: str, now: float, n: int, tz: tzinfo) -> tuple[str, str]:
    """(reason, how): how is "consume", "reentry" or "" (denied). The spec's order of checks."""
    if o.status == "refunded":
        return "REFUNDED", ""
    if o.status == "cancelled":
        return "CANCELLED", ""
    if (o.sites is not None and site not in o.sites) or (
        o.sites is None and o.site is not None and site != o.site
    ):
        return "WRONG_SITE", ""
    if o.gates and gate not in o.gates:
        return "WRONG_SITE", ""
    if o.valid_from is not None and now < o.valid_from:
        return "NOT_YET_VALID", ""
    if o.valid_until is not None and now >= o.valid_until:
        return "EXPIRED", ""
    loc = datetime.fromtimestamp(now, tz)
    if o.days is not None and o.days[loc.weekday()] != "1":
        return "OUTSIDE_HOURS", ""
    if o.hours is not None and not (o.hours[0] <= loc.hour * 60 + loc.minute < o.hours[1]):
        return "OUTSIDE_HOURS", ""
    today_used = o.day_used if o.day_key == local_day(now, tz) else 0
    if o.reentry and o.tracks and max(0, today_used - o.inside) >= n:
        return "OK", "reentry"
    if o.left <= 0:
        if o.passback and o.inside > 0:
            return "PASSBACK", ""
        return ("REFUNDED" if o.u == 0 and o.r > 0 else "ALREADY_USED"), ""
    if o.gap is not None and o.last_used_at is not None and now - o.last_used_at < o.gap:
        return "TOO_SOON", ""
    room = o.left if o.per_day is None else min(o.left, o.per_day - today_used)
    if room <= 0:
        return "DAILY_LIMIT", ""
    if n > room:
        return ("DAILY_LIMIT" if o.per_day is not None and n <= o.left else "QTY_EXCEEDED"), ""
    return "OK", "consume"


# ---------------------------------------------------------------- the machine


class LedgerMachine(RuleBasedStateMachine):
    engine: ClassVar[Engine]

    def __init__(self) -> None:
        super().__init__()
        self.orders: dict[str, MOrder] = {}
        self.codes: dict[str, str] = {}
        self.recs: dict[tuple[int, str], Rec] = {}
        self.log: list[Rec] = []
        self.sids = [0, 0, 0]
        self.seq = 0
        self.now = 0.0
        self.tz: tzinfo = UTC
        self.places: list[Place] = []
        self.last_rid = 0

    # ----------------------------------------------------------- set-up

    @initialize(start=st.sampled_from(STARTS))
    def setup(self, start: tuple[str, tuple[int, int, int, int, int]]) -> None:
        n = next(_SEQ)
        tzname, (y, mo, d, h, mi) = start
        self.tz = ZoneInfo(tzname)
        self.now = datetime(y, mo, d, h, mi, 7, tzinfo=self.tz).timestamp()
        e = self.engine
        slugs = {"a": f"m{n}a", "b": f"m{n}b"}
        for s in slugs.values():
            create_site(SqlDatabase(e), SiteIn(slug=s, name=s, timezone=tzname))
        with e.connect() as c:
            ids = {k: c.execute(select(Site.id).where(Site.slug == s)).scalar_one() for k, s in slugs.items()}
            self.last_rid = c.execute(select(Redemption.id).order_by(Redemption.id.desc())).scalar() or 0
        self.places = [Place(ids[s], g, self.tz) for s, g in DEVICES]
        self.devs = [f"m{n}d{i}" for i in range(len(DEVICES))]
        ins = []
        for name, (kind, q, site, rules, vf, vu) in ORDERS.items():
            code = f"M{n}-{name.upper()}"
            self.codes[name] = code
            rin = {**rules}
            if "sites" in rin:
                rin["sites"] = [slugs[s] for s in rin["sites"]]
            ins.append(
                OrderIn(
                    code=code,
                    title=name,
                    kind=kind,
                    quantity=q,
                    site=slugs[site] if site else None,
                    rules=RulesIn(**rin) if rin else None,
                    valid_from=self.at(vf),
                    valid_until=self.at(vu),
                )
            )
            hours = rules.get("hours")
            self.orders[code] = MOrder(
                code=code,
                kind=kind,
                q=q,
                site=ids[site] if site else None,
                sites=[ids[s] for s in rules["sites"]] if "sites" in rules else None,
                gates=rules.get("gates"),
                days=rules.get("days"),
                hours=HOURS if hours else None,
                gap=rules.get("min_interval_s"),
                per_day=rules.get("per_day"),
                passback=bool(rules.get("passback")),
                reentry=bool(rules.get("reentry")),
                valid_from=None if vf is None else self.now + vf,
                valid_until=None if vu is None else self.now + vu,
            )
        self.codes["unknown"] = f"M{n}-UNKNOWN"
        create_orders(SqlDatabase(e), ins)

    def at(self, offset: int | None) -> datetime | None:
        return None if offset is None else datetime.fromtimestamp(self.now + offset, UTC)

    # ----------------------------------------------------------- building requests

    def new_sid(self, dev: int) -> str:
        # Every device counts from s1: the same sids on different devices must never collide.
        self.sids[dev] += 1
        return f"s{self.sids[dev]}"

    def request(self, op: str, dev: int, name: str, qty: int, direction: str = "in") -> Request:
        if op == "check":
            # A check asks "may this code enter (and how many)?": devices send it with one unit and
            # read the most that could be redeemed from the answer, so the model checks one unit.
            sid, qty = f"c{next(_SEQ)}", 1
        else:
            sid = self.new_sid(dev)
        return Request(self.devs[dev], sid, self.codes[name], qty, direction, self.now, op)

    def dev_of(self, req: Request) -> int:
        return self.devs.index(req.device)

    # ----------------------------------------------------------- the model's step

    def expect(self, req: Request) -> tuple[Verdict | None, bool, str]:
        """Apply one request to the model. Returns (exact stored verdict if a replay, ok, reason)."""
        dev = self.dev_of(req)
        place = self.places[dev]
        o = self.orders.get(req.code)
        if req.op == "check":
            if o is None:
                return None, False, "UNKNOWN_CODE"
            if req.direction == "out":
                return None, True, "OK"
            reason, _ = entry_decision(o, place.site_id or 0, place.gate, self.now, req.qty, self.tz)
            return None, reason == "OK", reason
        prev = self.recs.get((dev, req.sid))
        if prev is not None:
            if fingerprint(prev.req) == fingerprint(req):
                return prev.verdict, prev.verdict.ok, prev.verdict.reason
            return None, False, "SID_REUSED"
        return None, *self.decide_and_apply(req, dev, o)

    def decide_and_apply(self, req: Request, dev: int, o: MOrder | None) -> tuple[bool, str]:
        place = self.places[dev]
        rec = Rec(self.seq, dev, req, None, "unknown", None, self.now, local_day(self.now, self.tz))  # type: ignore[arg-type]
        self.seq += 1
        ok, reason = False, "UNKNOWN_CODE"
        if req.op == "annul":
            rec.what = "annul"
            t = self.recs.get((dev, req.ref or ""))
            if (
                t is not None
                and t.what == "entry"
                and t.verdict.ok
                and not t.undone
                and self.now - t.at <= ANNUL_WINDOW_S
            ):
                self.undo(t)
                ok, reason = True, "OK"
            else:
                reason = "ANNUL_REFUSED"
        elif o is not None and req.direction == "out":
            rec.what, rec.code = "exit", o.code
            ok, reason = True, "OK"
            refused, _ = entry_decision(o, place.site_id or 0, place.gate, self.now, req.qty, self.tz)
            SEEN[f"exit while entry {refused}"] += 1
            if o.tracks:
                rec.let_out = min(o.inside, req.qty)
                o.inside -= rec.let_out
        elif o is not None:
            rec.what, rec.code = "entry", o.code
            reason, how = entry_decision(o, place.site_id or 0, place.gate, self.now, req.qty, self.tz)
            ok = reason == "OK"
            n = req.qty
            if how == "consume":
                o.u += n
                if o.day_key == rec.day:
                    o.day_used += n
                else:
                    if o.day_key is not None:
                        SEEN["used again on a later day"] += 1
                    o.day_key, o.day_used = rec.day, n
                o.last_used_at = self.now
                rec.consumed = n
            SEEN[how] += 1
            if how and o.tracks:
                o.inside += n
                rec.entered = n
        self.pending.append(rec)
        self.recs[(dev, req.sid)] = rec
        self.log.append(rec)
        return ok, reason

    def undo(self, t: Rec) -> None:
        o = self.orders[t.code or ""]
        o.u -= t.consumed
        if t.consumed and o.day_key != t.day:
            SEEN["undo of an earlier day"] += 1
        if t.consumed and o.day_key == t.day:
            o.day_used -= t.consumed
        t.taken_out = min(o.inside, self.still_inside(t))
        o.inside -= t.taken_out
        t.undone, t.undo_seq = True, self.seq
        self.seq += 1
        SEEN["undo"] += 1
        standing = [
            r.at
            for r in self.log
            if r.code == o.code and r.what == "entry" and r.consumed > 0 and not r.undone and r.verdict.ok
        ]
        o.last_used_at = max(standing) if standing else None

    def still_inside(self, t: Rec) -> int:
        """How many of entry `t`'s people are still counted inside, from what was recorded after it.

        The rules: an exit is first credited to the people of later entries still counted (latest
        in, first out), only the rest to `t`'s; an undo of a later entry takes out that entry's own
        people; an undo of an earlier entry took out that entry's people, never `t`'s.
        """
        moves: list[tuple[int, str, int]] = []
        for r in self.log:
            if r.code != t.code or r is t:
                continue
            if r.seq > t.seq and r.what == "entry" and r.entered:
                moves.append((r.seq, "in", r.entered))
            if r.seq > t.seq and r.what == "exit" and r.let_out:
                moves.append((r.seq, "out", r.let_out))
            if r.undone and r.undo_seq > t.seq and r.seq > t.seq:
                moves.append((r.undo_seq, "undo", r.taken_out))
        later = gone = 0
        for _, kind, n in sorted(moves):
            if kind == "in":
                later += n
            elif kind == "undo":
                later -= min(later, n)
            else:
                theirs = min(later, n)
                later -= theirs
                gone += n - theirs
        return max(0, t.entered - gone)

    # ----------------------------------------------------------- sending to the real ledger

    def send(self, reqs: list[Request]) -> None:
        self.pending: list[Rec] = []
        with self.engine.connect() as c, writer(c).begin():
            out = apply_batch(
                SqlLedger(c), [(r, self.places[self.dev_of(r)]) for r in reqs], self.now, render=render
            )
        assert len(out) == len(reqs)
        for req, v in zip(reqs, out, strict=True):
            before = len(self.pending)
            exact, ok, reason = self.expect(req)
            where = f"{req.op} {req.direction} {req.code} x{req.qty} ref={req.ref} sid={req.device}/{req.sid}"
            if exact is not None:
                assert v.to_dict() == exact.to_dict(), f"a retry of {where} did not replay its stored verdict"
            else:
                assert (v.ok, v.reason) == (ok, reason), (
                    f"{where}: got {v.ok}/{v.reason}, the model says {ok}/{reason}"
                )
            assert v.sid == req.sid
            SEEN[f"{req.op} {req.direction} {v.reason}" if exact is None else "replay"] += 1
            if len(self.pending) > before:
                self.pending[-1].verdict = v
        self.map_rows()

    def map_rows(self) -> None:
        """Every new ledger row of our devices is one request the model recorded, and the reverse."""
        with self.engine.connect() as c:
            rows = c.execute(
                select(Redemption.id, Redemption.idem_key)
                .where(Redemption.id > self.last_rid)
                .order_by(Redemption.id)
            ).all()
        mine = {}
        for rid, key in rows:
            head, _, sid = key.rpartition("/")
            dev = head.rpartition(":")[2]
            if dev in self.devs:
                mine[(self.devs.index(dev), sid)] = rid
            self.last_rid = max(self.last_rid, rid)
        want = {(r.dev, r.req.sid): r for r in self.pending}
        assert set(mine) == set(want), f"rows recorded {sorted(mine)}, the model recorded {sorted(want)}"
        for k, rid in mine.items():
            want[k].rid = rid
        self.pending = []

    def adjust(self, fn: Any, expect_ok: bool, what: str) -> None:
        try:
            fn()
            done = True
        except Conflict:
            done = False
        assert done == expect_ok, (
            f"{what}: {'done' if done else 'refused'}, the model says {'done' if expect_ok else 'refused'}"
        )
        with self.engine.connect() as c:
            self.last_rid = max(
                self.last_rid, c.execute(select(Redemption.id).order_by(Redemption.id.desc())).scalar() or 0
            )

    # ----------------------------------------------------------- rules: requests

    # Hypothesis draws rules with fewer arguments more often: the arguments are packed into tuples so
    # that requests come often and cancels (which end an order's story) seldom.

    @rule(ask=ASK, twice=st.booleans())
    def redeem(self, ask: tuple[int, str, int, int], twice: bool) -> None:
        dev, name, qty, wait = ask
        self.wait(wait)
        r = self.request("redeem", dev, name, qty)
        self.send([r, r] if twice else [r])  # the same scan twice in one batch: one decision

    @rule(ask=ASK)
    def exit(self, ask: tuple[int, str, int, int]) -> None:
        dev, name, qty, wait = ask
        self.wait(wait)
        self.send([self.request("redeem", dev, name, qty, "out")])

    @rule(ask=ASK, back=st.integers(0, 2))
    def round_trip(self, ask: tuple[int, str, int, int], back: int) -> None:
        """Some of a group leave (at one gate) and come back (at another), maybe another day."""
        dev, name, qty, wait = ask
        self.send([self.request("redeem", dev, name, qty, "out")])
        self.wait(wait)
        self.send([self.request("redeem", back, name, qty)])

    @rule(ask=st.tuples(st.integers(0, 2), st.sampled_from(NAMES), st.sampled_from(["in", "out"])))
    def check(self, ask: tuple[int, str, str]) -> None:
        dev, name, direction = ask
        self.send([self.request("check", dev, name, 1, direction)])

    @rule(
        items=st.lists(
            st.tuples(
                st.sampled_from(["redeem", "exit", "check"]),
                st.integers(0, 2),
                st.sampled_from(NAMES),
                st.integers(1, 3),
            ),
            min_size=2,
            max_size=3,
        )
    )
    def batch(self, items: list[tuple[str, int, str, int]]) -> None:
        """Several requests in one transaction, decided in order."""
        reqs = [
            self.request(
                "check" if op == "check" else "redeem", dev, name, qty, "out" if op == "exit" else "in"
            )
            for op, dev, name, qty in items
        ]
        self.send(reqs)

    @precondition(lambda self: bool(self.log))
    @rule(
        dev=st.integers(0, 2),
        which=st.tuples(st.integers(0, 5), st.sampled_from(["admitted", "any", "foreign"])),
    )
    def annul(self, dev: int, which: tuple[int, str]) -> None:
        """A device annuls one of its recent admissions, or any of its scans, or names another device's sid."""
        back, pool = which
        if pool == "admitted":
            recs = [
                r for r in self.log if r.dev == dev and r.what == "entry" and r.verdict.ok and not r.undone
            ]
        else:
            recs = [r for r in self.log if (r.dev != dev) == (pool == "foreign")]
        if not recs:
            return
        ref = recs[-1 - back % len(recs)].req.sid
        own = self.recs.get((dev, ref))
        if own is not None and self.now - own.at == ANNUL_WINDOW_S:
            self.now += 1  # the window's very edge is left open by the rules
        req = Request(self.devs[dev], self.new_sid(dev), "", 1, "in", self.now, "annul", ref=ref)
        self.send([req])

    @precondition(lambda self: bool(self.log))
    @rule(pick=st.integers(0, 60), drift=st.integers(0, 3))
    def retry(self, pick: int, drift: int) -> None:
        """A device resends a recorded request with the same sid: the stored verdict, nothing changes."""
        old = self.log[pick % len(self.log)].req
        self.send([replace(old, device_time=(old.device_time or 0) + drift)])

    @precondition(lambda self: bool(self.log))
    @rule(pick=st.integers(0, 60), how=st.tuples(st.integers(0, 3), st.sampled_from(NAMES)))
    def reuse(self, pick: int, how: tuple[int, str]) -> None:
        """A re-flashed board starts its sids again: same sid, another request -> SID_REUSED."""
        old = self.log[pick % len(self.log)].req
        variant, name = how
        code = self.codes[name]
        if variant == 0:
            new = replace(old, qty=old.qty % 3 + 1)
        elif variant == 1:
            new = replace(old, op="redeem", ref=None, code=code if code != old.code else old.code + "X")
        elif variant == 2:
            new = replace(old, direction="out" if old.direction == "in" else "in")
        else:
            new = replace(
                old,
                op="annul",
                code="",
                qty=1,
                direction="in",
                ref=old.sid if old.op != "annul" else old.sid + "x",
            )
        assert fingerprint(new) != fingerprint(old)
        self.send([new])

    # ----------------------------------------------------------- rules: supervisors and the shop

    @precondition(lambda self: bool(self.log))
    @rule(which=st.tuples(st.integers(0, 30), st.sampled_from(NAMES), st.booleans()), wait=WAIT)
    def revert_one(self, which: tuple[int, str, bool], wait: int) -> None:
        """A supervisor reverts an admission of one order (or any recorded request: only admissions can be).

        Counted from the oldest: reverting an entry of an earlier day is where undo goes wrong.
        """
        pick, name, admitted = which
        recs = self.log
        if admitted:
            standing = [r for r in self.log if r.what == "entry" and r.verdict.ok and not r.undone]
            recs = [r for r in standing if r.code == self.codes[name]] or standing
        if not recs:
            return
        t = recs[pick % len(recs)]
        self.wait(wait)
        assert t.rid is not None
        can = t.what == "entry" and t.verdict.ok and not t.undone
        self.adjust(
            lambda: revert(SqlDatabase(self.engine), t.rid or 0, "sup", "test", now=self.now),
            can,
            f"revert of #{t.seq}",
        )
        if can:
            self.undo(t)

    @rule(name=st.sampled_from(SHOP_ORDER), units=st.integers(1, 3), why=st.sampled_from(["rain", "typo"]))
    def refund_some(self, name: str, units: int, why: str) -> None:
        o = self.orders[self.codes[name]]
        can = o.status != "cancelled" and 1 <= units <= o.left
        self.adjust(
            lambda: refund(SqlDatabase(self.engine), o.code, units, "shop", why, now=self.now),
            can,
            f"refund {units} of {name}",
        )
        if can:
            o.r += units
            if o.r == o.q:
                o.status = "refunded"

    @rule(name=st.sampled_from(SHOP_ORDER), actor=st.sampled_from(["shop", "desk"]), why=st.just("test"))
    def cancel_one(self, name: str, actor: str, why: str) -> None:
        o = self.orders[self.codes[name]]
        can = o.u == 0
        self.adjust(
            lambda: cancel(SqlDatabase(self.engine), o.code, actor, why, now=self.now), can, f"cancel {name}"
        )
        if can:
            o.status = "cancelled"

    # ----------------------------------------------------------- rules: time

    def settle(self) -> None:
        # The closing minute itself (18:00) is left open by the rules: step past it.
        loc = datetime.fromtimestamp(self.now, self.tz)
        if loc.hour * 60 + loc.minute == HOURS[1]:
            self.now += 60

    @rule(s=st.sampled_from(TICKS))
    def tick(self, s: int) -> None:
        self.wait(s)

    def wait(self, s: int) -> None:
        self.now += s
        self.settle()

    @rule(to=st.sampled_from(JUMPS))
    def jump(self, to: tuple[int, int, int]) -> None:
        """To the next local hh:mm:ss: across midnight and across the opening hours."""
        loc = datetime.fromtimestamp(self.now, self.tz)
        for add in range(3):
            day = loc.date() + timedelta(days=add)
            t = datetime(day.year, day.month, day.day, *to, tzinfo=self.tz).timestamp()
            if t > self.now:
                self.now = t
                break
        self.settle()

    # ----------------------------------------------------------- invariants

    @invariant()
    def agrees(self) -> None:
        if not self.orders:
            return
        with self.engine.connect() as c:
            rows = c.execute(
                select(
                    Order.code,
                    Order.quantity,
                    Order.used,
                    Order.refunded,
                    Order.status,
                    Order.inside,
                    Order.day_key,
                    Order.day_used,
                    Order.last_used_at,
                ).where(Order.code.in_(list(self.orders)))
            ).all()
            stored = dict(
                c.execute(
                    select(Redemption.id, Redemption.verdict).where(
                        Redemption.id.in_([r.rid for r in self.log])
                    )
                ).all()
            )
            undone = dict(
                c.execute(
                    select(Redemption.id, Redemption.undone).where(
                        Redemption.id.in_([r.rid for r in self.log])
                    )
                ).all()
            )
        assert len(rows) == len(self.orders)
        for row in rows:
            o = self.orders[row.code]
            assert row.used >= 0 and row.refunded >= 0 and row.used + row.refunded <= row.quantity
            got = (row.used, row.refunded, row.status, int(row.inside), row.day_used if row.day_key else 0)
            want = (o.u, o.r, o.status, o.inside, o.day_used if o.day_key else 0)
            assert got == want, (
                f"{row.code} (used, refunded, status, inside, day_used): db {got}, model {want}"
            )
            if o.day_key is not None:
                assert row.day_key == o.day_key, f"{row.code} day_key: db {row.day_key}, model {o.day_key}"
            assert row.last_used_at == o.last_used_at, (
                f"{row.code} last_used_at: db {row.last_used_at}, model {o.last_used_at}"
            )
        for r in self.log:
            assert r.rid is not None
            assert Verdict.from_json(stored[r.rid]).to_dict() == r.verdict.to_dict(), (
                f"stored verdict of #{r.seq}"
            )
            assert bool(undone[r.rid]) == r.undone, (
                f"undone flag of #{r.seq}: db {undone[r.rid]}, model {r.undone}"
            )


MODEL_SETTINGS = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    derandomize=True,  # the same runs every time: CI is reproducible
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
# Each must have been reached at least once, else the runs prove little (entry reasons count for
# redeem or check alike).
MUST_REACH = [
    "OK",
    "reentry",
    "undo",
    "undo of an earlier day",
    "replay",
    "PASSBACK",
    "TOO_SOON",
    "DAILY_LIMIT",
    "QTY_EXCEEDED",
    "ALREADY_USED",
    "OUTSIDE_HOURS",
    "WRONG_SITE",
    "NOT_YET_VALID",
    "EXPIRED",
    "REFUNDED",
    "CANCELLED",
    "UNKNOWN_CODE",
    "SID_REUSED",
    "annul in OK",
    "annul in ANNUL_REFUSED",
    "exit while entry OUTSIDE_HOURS",
]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_ledger_agrees_with_the_model(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """Holes 1, 3, 4, 5, 6, 7 (and 2 for device key spaces): every verdict and counter agrees with the model."""
    e = engine_for(kind, tmp_path, request)
    machine = type("Machine", (LedgerMachine,), {"engine": e})
    SEEN.clear()
    try:
        run_state_machine_as_test(machine, settings=MODEL_SETTINGS)
    finally:
        e.dispose()
    reached = {k.rpartition(" ")[2] if k.startswith(("redeem in", "check in")) else k for k in SEEN}
    assert not [m for m in MUST_REACH if m not in reached], f"never reached: {sorted(SEEN)}"
