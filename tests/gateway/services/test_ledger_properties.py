# Property-based tests of the ledger: under any mix of operations, units are never over-used and all add up.
from __future__ import annotations

import itertools
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from gateway.adapters.db.engine import make_engine, migrate, writer
from gateway.adapters.db.models import Audit, Order, Redemption
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.adapters.db.repositories.ledger import SqlLedger
from gateway.adapters.mqtt.oled import render
from gateway.domain.errors import Conflict
from gateway.services.adjustments import cancel, refund, revert
from gateway.services.ledger import Place, Request, apply_batch
from gateway.services.orders import OrderIn, create_orders

_DIR = Path(tempfile.mkdtemp(prefix="hx-prop-"))
_ENGINE: Engine | None = None
_SEQ = itertools.count()
PLACE = Place(None, "G", ZoneInfo("UTC"))


def engine() -> Engine:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = make_engine(f"sqlite:///{_DIR / 'prop.db'}")
        migrate(_ENGINE)
    return _ENGINE


op = st.one_of(
    st.tuples(st.just("redeem"), st.integers(0, 5), st.integers(1, 4)),  # device, qty
    st.tuples(st.just("annul"), st.integers(0, 5), st.integers(0, 30)),  # device, which earlier scan
    st.tuples(st.just("revert"), st.integers(0, 30), st.just(0)),
    st.tuples(st.just("refund"), st.integers(1, 4), st.just(0)),
    st.tuples(st.just("cancel"), st.just(0), st.just(0)),
    st.tuples(st.just("batch"), st.integers(0, 5), st.integers(1, 3)),  # same scan sent twice in a batch
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(["ticket", "pack", "value"]),
    quantity=st.integers(1, 12),
    ops=st.lists(op, max_size=25),
)
def test_units_are_never_over_used_and_always_add_up(
    kind: str, quantity: int, ops: list[tuple[str, int, int]]
) -> None:
    e = engine()
    n = next(_SEQ)
    code = f"P{n}"
    create_orders(SqlDatabase(e), [OrderIn(code=code, title="Prop", kind=kind, quantity=quantity)])  # type: ignore[arg-type]
    sent: list[tuple[str, str]] = []
    now = time.time()
    for i, (name, a, b) in enumerate(ops):
        dev = f"d{n}-{a}"
        sid = f"s{i}"
        if name in ("redeem", "batch"):
            amt = b if kind == "value" else None
            req = Request(dev, sid, code, b, "in", None, "redeem", amt)
            items = [(req, PLACE)] * (2 if name == "batch" else 1)
            with e.connect() as c, writer(c).begin():
                vs = apply_batch(SqlLedger(c), items, now, render=render)
            assert all(v == vs[0] for v in vs)
            sent.append((dev, sid))
        elif name == "annul" and sent:
            target_dev, target_sid = sent[b % len(sent)]
            with e.connect() as c, writer(c).begin():
                apply_batch(
                    SqlLedger(c),
                    [(Request(target_dev, f"a{i}", "", 1, "in", None, "annul", ref=target_sid), PLACE)],
                    now,
                    render=render,
                )
        elif name == "revert":
            with e.connect() as c:
                ids = [
                    r
                    for (r,) in c.execute(
                        select(Redemption.id).where(Redemption.code == code).order_by(Redemption.id)
                    )
                ]
            if ids:
                try:
                    revert(SqlDatabase(e), ids[a % len(ids)], "sup", "test")
                except Conflict:
                    pass  # not a successful, still-standing redemption: refused, nothing changes
        elif name == "refund":
            try:
                refund(SqlDatabase(e), code, a, "shop", "test")
            except Conflict:
                pass
        elif name == "cancel":
            try:
                cancel(SqlDatabase(e), code, "shop", "test")
            except Conflict:
                pass
    with e.connect() as c:
        o = c.execute(
            select(Order.quantity, Order.used, Order.refunded, Order.status, Order.id).where(
                Order.code == code
            )
        ).one()
        standing = c.execute(
            select(func.coalesce(func.sum(Redemption.qty), 0)).where(
                Redemption.order_id == o.id,
                Redemption.ok.is_(True),
                Redemption.op == "redeem",
                Redemption.undone.is_(False),
            )
        ).scalar_one()
        refunded = c.execute(
            select(func.coalesce(func.sum(Audit.units), 0)).where(
                Audit.order_id == o.id, Audit.action == "refund"
            )
        ).scalar_one()
    assert (
        o.used >= 0 and o.refunded >= 0 and o.used + o.refunded <= o.quantity
    )  # never over-used, never negative
    assert o.used == standing  # every used unit is one standing redemption, exactly once
    assert o.refunded == refunded  # every refunded unit is one audited refund
    if o.status == "cancelled":
        assert o.used == 0
