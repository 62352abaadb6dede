# Concurrent writers on the conditional updates: the ledger's rows must account for every order counter.
"""Several threads, each with its own connection, send random batches through the real `apply_batch`
(codes and short codes, multi-unit asks, vouchers, exits, re-entries, retries of their own scan ids,
the same id twice in one batch, annuls of their own scans) while a supervisor refunds units, and the
clock crosses the site's midnight. Batches are redone the way GroupCommit redoes them. Afterwards the
rows and the orders must agree with each other and with the rules (units never pass the quantity, a
voucher never goes negative, the daily limit and the minimum interval hold among the uses that stand)
and every answer a device got is the stored verdict of its key.

On PostgreSQL, orders named by short code (and annulled orders read by id) are read without the row
locks a code takes, so there the conditional updates alone keep the counters right.

Seeded random instead of hypothesis: the thread interleaving is not reproducible anyway, and the
checks are on the end state, which every interleaving must satisfy.
"""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError, OperationalError

from gateway.adapters.db.engine import writer
from gateway.adapters.db.models import Order, Redemption
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.adapters.db.repositories.ledger import SqlLedger
from gateway.adapters.mqtt.oled import render
from gateway.domain.verdict import Verdict
from gateway.services import adjustments
from gateway.services.ledger import Request, apply_batch, idem_key
from gateway.services.ledger_store import Contended
from tests.gateway.trust_fixtures import add_order, at, ledger, place

T0 = at("2026-11-23 23:58")  # the batches run across the site's midnight
GAP = 30
ORDERS: dict[str, dict[str, Any]] = {
    "T": {"quantity": 8, "short_code": "TT11"},
    "D": {"quantity": 20, "short_code": "DD22", "rules": {"per_day": 3}},
    "G": {"quantity": 20, "short_code": "GG33", "rules": {"min_interval_s": GAP}},
    "R": {"quantity": 3, "short_code": "RR44", "rules": {"reentry": True}},
    "X": {"quantity": 4, "short_code": "XX55", "rules": {"passback": True, "per_day": 3}},
    "V": {"quantity": 1000, "short_code": "VV66", "kind": "value"},
}
WORKERS = 4
BATCHES = 25


class Clock:
    """Shared wall clock: every batch takes the next tick (7 s), so commits race out of time order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.tick = 0

    def next(self) -> float:
        with self.lock:
            self.tick += 1
            return T0 + 7 * self.tick


def _request(rnd: random.Random, device: str, sids: list[str], n: int) -> Request:
    roll = rnd.random()
    if sids and roll < 0.06:  # a retry of one of our own scans
        return _SENT[(device, rnd.choice(sids))]
    if roll < 0.12:
        with _SENT_LOCK:  # a scan another worker got too (the broker delivered it twice)
            if _SENT:
                return rnd.choice(list(_SENT.values()))
    sid = f"{device}-{n}"
    sids.append(sid)
    name = rnd.choice(list(ORDERS))
    code = ORDERS[name]["short_code"] if rnd.random() < 0.5 else name
    if sids[:-1] and roll < 0.2:
        req = Request(device, sid, "", 1, "in", None, op="annul", ref=rnd.choice(sids[:-1]))
    elif name in ("R", "X") and roll < 0.45:
        req = Request(device, sid, code, rnd.randint(1, 2), "out", None)
    elif name == "V":
        req = Request(device, sid, code, 1, "in", None, amt=rnd.choice([50, 120, 300]))
    else:
        req = Request(device, sid, code, rnd.choice([1, 1, 2]), "in", None)
    with _SENT_LOCK:
        _SENT[(device, sid)] = req
    return req


_SENT: dict[tuple[str, str], Request] = {}
_SENT_LOCK = threading.Lock()


def _batch(e: Engine, items: list[Request], now: float) -> list[Verdict]:
    """One batch, redone like GroupCommit.decide does on a database error or Contended."""
    p = place()
    last: Exception | None = None
    for _ in range(8):
        try:
            with e.connect() as c, writer(c).begin():
                return apply_batch(SqlLedger(c), [(r, p) for r in items], now, render=render)
        except (Contended, IntegrityError, OperationalError) as err:
            last = err
    raise AssertionError(f"batch never went through: {last}")


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("kind", ["sqlite", "pg"])
def test_concurrent_batches_keep_the_ledger_and_the_orders_in_step(
    kind: str, seed: int, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    e = ledger(kind, tmp_path, request)
    for code, fields in ORDERS.items():
        add_order(e, code, **fields)
    _SENT.clear()
    clock = Clock()
    answers: dict[str, list[str]] = defaultdict(list)  # key -> every verdict a device was given
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        rnd = random.Random(seed * 100 + n)
        device = f"dev{n}"
        sids: list[str] = []
        try:
            for b in range(BATCHES):
                items = [_request(rnd, device, sids, b * 10 + i) for i in range(rnd.randint(1, 4))]
                if rnd.random() < 0.15:
                    items.append(items[0])  # the same scan id twice in one batch
                out = _batch(e, items, clock.next())
                with lock:
                    for r, v in zip(items, out, strict=True):
                        answers[idem_key(r.device, r.sid)].append(v.to_json())
        except BaseException as err:  # surfaced in the main thread
            errors.append(err)

    def supervisor() -> None:
        db = SqlDatabase(e)
        try:
            for code in ["T", "V", "T", "X"]:
                try:
                    adjustments.refund(db, code, 1, "sup", "test", now=clock.next())
                except Exception as err:  # nothing left to refund: a clear refusal, fine here
                    if "unredeemed" not in str(err) and "refund" not in str(err):
                        raise
        except BaseException as err:
            errors.append(err)

    ts = [threading.Thread(target=worker, args=(n,)) for n in range(WORKERS)]
    ts.append(threading.Thread(target=supervisor))
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors, errors
    with e.connect() as c:
        orders = {o.code: o for o in c.execute(select(Order)).all()}
        rows = c.execute(select(Redemption).order_by(Redemption.id)).all()
    stored = {r.idem_key: r for r in rows}
    # Every answer a device was given is its key's stored verdict (a repeat replays it byte for byte).
    for key, given in answers.items():
        if key in stored:
            assert set(given) <= {stored[key].verdict} | _not_stored(given), (key, given)
    for code, o in orders.items():
        mine = [r for r in rows if r.order_id == o.id]
        standing = [r for r in mine if r.op == "redeem" and r.ok and not r.undone and r.qty > 0]
        assert o.used >= 0 and o.used + o.refunded <= o.quantity, code
        assert o.used == sum(r.qty for r in standing), (code, o.used, [(r.id, r.qty) for r in standing])
        assert o.inside == sum(r.inside_delta for r in mine), code
        assert o.inside >= 0, code
        rules = ORDERS[code].get("rules", {})
        if rules.get("per_day"):
            per_day: dict[str, int] = defaultdict(int)
            for r in standing:
                per_day[r.day_key] += r.qty
            assert max(per_day.values(), default=0) <= rules["per_day"], (code, dict(per_day))
            assert o.day_used == per_day.get(o.day_key, 0), (code, o.day_key, o.day_used, dict(per_day))
        if rules.get("min_interval_s"):
            times = sorted(r.server_time for r in standing)
            gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
            assert min(gaps, default=GAP) >= GAP, (code, gaps)
    e.dispose()


def _not_stored(given: list[str]) -> set[str]:
    """Answers after which nothing was stored (a transient refusal, SID_REUSED): allowed besides."""
    return {g for g in given if '"retry":true' in g.replace(" ", "") or "SID_REUSED" in g}


@pytest.mark.parametrize("kind", ["sqlite", "pg"])
def test_a_refund_on_an_order_busy_with_scans_goes_through(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Devices redeem one hot order non-stop while a supervisor refunds units of it one by one: every
    refund must go through first time (it holds the order's row, so the scans wait for it, not the
    other way round) — a hot order used to answer "the order kept changing; try again"."""
    e = ledger(kind, tmp_path, request)
    add_order(e, "H", quantity=100_000)
    clock = Clock()
    stop = threading.Event()
    errors: list[BaseException] = []

    def device(n: int) -> None:
        i = 0
        try:
            while not stop.is_set():
                i += 1
                _batch(e, [Request(f"hot{n}", f"s{i}", "H", 1, "in", None)], clock.next())
        except BaseException as err:
            errors.append(err)

    ts = [threading.Thread(target=device, args=(n,)) for n in range(3)]
    for t in ts:
        t.start()
    db = SqlDatabase(e)
    try:
        done = [adjustments.refund(db, "H", 1, "sup", "busy", now=clock.next()) for _ in range(40)]
    finally:
        stop.set()
        for t in ts:
            t.join(60)
    assert not errors, errors
    assert [d["refunded"] for d in done] == list(range(1, 41))
    with e.connect() as c:
        o = c.execute(select(Order).where(Order.code == "H")).one()
        used = c.execute(select(Redemption).where(Redemption.ok, Redemption.op == "redeem")).all()
    assert o.refunded == 40 and o.used == sum(r.qty for r in used) and o.used > 0
    e.dispose()
