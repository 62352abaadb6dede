# Changes after the fact: supervisor revert, refunds of unredeemed units, cancellation — all audited.
from __future__ import annotations

import json
import time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, insert, select, update

from gateway.adapters.db.engine import writer
from gateway.adapters.db.models import Audit, Order, Redemption, Site
from gateway.domain.decisions import OrderView
from gateway.domain.errors import Conflict, NotFound, ValidationFailed
from gateway.domain.order_state import undoable
from gateway.domain.requests import system_key
from gateway.services.ledger_store import (
    LostRace,
    load_order,
    mark_undone,
    redemption_ref,
    undo,
    write_orders,
)

RETRIES = 5


def _order(conn: Any, code: str) -> OrderView:
    order = load_order(conn, Order.code == code)
    if order is None:
        raise NotFound(f"no order with code {code!r}", code=code)
    return order


def _audit(
    conn: Any,
    actor: str,
    action: str,
    order_id: int | None,
    red_id: int | None,
    units: int,
    reason: str,
    now: float | None = None,
) -> None:
    conn.execute(
        insert(Audit).values(
            at=time.time() if now is None else now,
            actor=actor,
            action=action,
            order_id=order_id,
            redemption_id=red_id,
            units=units,
            reason=reason[:200],
        )
    )


def _retrying(fn: Any) -> Any:
    # Version-checked updates may lose a race with the service loop; the whole step is simply redone.
    for attempt in range(RETRIES):
        try:
            return fn()
        except LostRace:
            if attempt == RETRIES - 1:
                raise Conflict("the order kept changing; try again") from None
            time.sleep(0.02 * (attempt + 1))
    raise AssertionError("unreachable")


def refund(
    engine: Engine, code: str, units: int | None, actor: str, reason: str, *, now: float | None = None
) -> dict[str, Any]:
    """Refund `units` unredeemed units (None = all of them). Used units must be reverted first."""
    if units is not None and units < 1:
        raise ValidationFailed("units must be at least 1", field="units")

    def step() -> dict[str, Any]:
        with engine.connect() as c, writer(c).begin():
            o = _order(c, code)
            if o.status == "cancelled":
                raise Conflict("the order is cancelled; nothing to refund", code="CANCELLED")
            n = o.left if units is None else units
            if n == 0 or n > o.left:
                raise Conflict(
                    f"only {o.left} unredeemed unit(s) can be refunded ({o.used} used); revert used units first",
                    unredeemed=o.left,
                    used=o.used,
                )
            refunded = o.refunded + n
            status = "refunded" if refunded == o.quantity else o.status
            res = c.execute(
                update(Order)
                .where(Order.id == o.id, Order.version == o.version)
                .values(refunded=refunded, status=status, version=o.version + 1)
            )
            if res.rowcount != 1:
                raise LostRace(code)
            _audit(c, actor, "refund", o.id, None, n, reason, now)
            return {"code": code, "refunded": refunded, "left": o.left - n, "status": status}

    out: dict[str, Any] = _retrying(step)
    return out


def cancel(engine: Engine, code: str, actor: str, reason: str, *, now: float | None = None) -> dict[str, Any]:
    """Cancel an order nothing was redeemed from (otherwise: refund what is left)."""

    def step() -> dict[str, Any]:
        with engine.connect() as c, writer(c).begin():
            o = _order(c, code)
            if o.status == "cancelled":
                return {"code": code, "status": "cancelled"}
            if o.used > 0:
                raise Conflict(f"{o.used} unit(s) were redeemed; refund the rest instead", used=o.used)
            res = c.execute(
                update(Order)
                .where(Order.id == o.id, Order.version == o.version)
                .values(status="cancelled", version=o.version + 1)
            )
            if res.rowcount != 1:
                raise LostRace(code)
            _audit(c, actor, "cancel", o.id, None, 0, reason, now)
            return {"code": code, "status": "cancelled"}

    out: dict[str, Any] = _retrying(step)
    return out


def revert(
    engine: Engine,
    redemption_id: int,
    actor: str,
    reason: str,
    *,
    now: float | None = None,
    default_tz: str = "UTC",
) -> dict[str, Any]:
    """A supervisor undoes a redemption at any time, with a reason: its units come back."""
    if not reason.strip():
        raise ValidationFailed("a revert needs a reason", field="reason")

    at = now

    def step() -> dict[str, Any]:
        now = time.time() if at is None else at
        with engine.connect() as c, writer(c).begin():
            r = redemption_ref(c, redemption_id)
            if r is None:
                raise NotFound(f"no redemption {redemption_id}")
            why = undoable(r)
            if why is not None:
                raise Conflict(f"only a successful entry can be reverted: {why}")
            tz = c.execute(select(Site.timezone).where(Site.id == r.site_id)).scalar() or default_tz
            view = load_order(c, Order.id == r.order_id)
            moved = 0
            if view is not None:
                # The same undo as a device's annul: exactly what that redemption changed comes back.
                new = undo(c, view, r, ZoneInfo(tz))
                moved = new.inside - view.inside
                write_orders(c, {view.id: new}, {view.id: view.version})
            mark_undone(c, [r.id])
            verdict = {
                "v": 1,
                "sid": f"rv{r.id}",
                "ok": True,
                "reason": "OK",
                "l1": "REVERTED",
                "l2": "",
                "detail": reason[:120],
                "sound": "attention",
                "left": None,
            }
            c.execute(
                insert(Redemption).values(
                    idem_key=system_key("revert", r.id),
                    device=f"web-{actor}"[:40],
                    scan_id=f"rv{r.id}",
                    site_id=r.site_id,
                    gate=r.gate,
                    order_id=r.order_id,
                    code=r.code,
                    qty=r.qty,
                    direction=r.direction,
                    ok=True,
                    reason="OK",
                    device_time=None,
                    server_time=now,
                    verdict=json.dumps(verdict),
                    op="revert",
                    ref_id=r.id,
                    inside_delta=moved,
                    undone=False,
                    user=actor[:40],
                )
            )
            _audit(c, actor, "revert", r.order_id, r.id, r.qty, reason, now)
            return {"reverted": r.id, "code": r.code, "units": r.qty}

    out: dict[str, Any] = _retrying(step)
    return out
