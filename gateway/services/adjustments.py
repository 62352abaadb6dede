# Changes after the fact: supervisor revert, refunds of unredeemed units, cancellation — all audited.
from __future__ import annotations

import json
import time
from typing import Any
from zoneinfo import ZoneInfo

from gateway.domain.decisions import OrderView
from gateway.domain.errors import Conflict, NotFound, ValidationFailed
from gateway.domain.order_state import undoable
from gateway.domain.requests import system_key
from gateway.services.ledger_store import LostRace, undo
from gateway.services.ports.database import Database
from gateway.services.ports.ledger import Ledger

RETRIES = 5


def _order(ledger: Ledger, code: str) -> OrderView:
    # Locked: the service loop's conditional updates wait for this adjustment instead of racing it
    # (a hot order under load otherwise turned every version-checked refund into "try again").
    order = ledger.order_by_code(code, lock=True)
    if order is None:
        raise NotFound(f"no order with code {code!r}", code=code)
    return order


def _audit(
    ledger: Ledger,
    actor: str,
    action: str,
    order_id: int | None,
    red_id: int | None,
    units: int,
    reason: str,
    now: float | None = None,
) -> None:
    entry = {
        "at": time.time() if now is None else now,
        "actor": actor,
        "action": action,
        "order_id": order_id,
        "redemption_id": red_id,
        "units": units,
        "reason": reason[:200],
    }
    ledger.record([], [entry])


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
    db: Database, code: str, units: int | None, actor: str, reason: str, *, now: float | None = None
) -> dict[str, Any]:
    """Refund `units` unredeemed units (None = all of them). Used units must be reverted first."""
    if units is not None and units < 1:
        raise ValidationFailed("units must be at least 1", field="units")

    def step() -> dict[str, Any]:
        with db.write() as tx:
            o = _order(tx.ledger, code)
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
            if not tx.ledger.refund(o.id, o.version, refunded, status):
                raise LostRace(code)
            _audit(tx.ledger, actor, "refund", o.id, None, n, reason, now)
            return {"code": code, "refunded": refunded, "left": o.left - n, "status": status}

    out: dict[str, Any] = _retrying(step)
    return out


def cancel(db: Database, code: str, actor: str, reason: str, *, now: float | None = None) -> dict[str, Any]:
    """Cancel an order nothing was redeemed from (otherwise: refund what is left)."""

    def step() -> dict[str, Any]:
        with db.write() as tx:
            o = _order(tx.ledger, code)
            if o.status == "cancelled":
                return {"code": code, "status": "cancelled"}
            if o.used > 0:
                raise Conflict(f"{o.used} unit(s) were redeemed; refund the rest instead", used=o.used)
            if not tx.ledger.cancel(o.id, o.version):
                raise LostRace(code)
            _audit(tx.ledger, actor, "cancel", o.id, None, 0, reason, now)
            return {"code": code, "status": "cancelled"}

    out: dict[str, Any] = _retrying(step)
    return out


def revert(
    db: Database,
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
        with db.write() as tx:
            ledger = tx.ledger
            r = ledger.recorded_id(redemption_id)
            if r is None:
                raise NotFound(f"no redemption {redemption_id}")
            why = undoable(r)
            if why is not None:
                raise Conflict(f"only a successful entry can be reverted: {why}")
            tz = ledger.site_zone(r.site_id) or default_tz
            view = ledger.order(r.order_id, lock=True) if r.order_id is not None else None
            moved = 0
            if view is not None:
                # The same undo as a device's annul: exactly what that redemption changed comes back.
                new = undo(ledger, view, r, ZoneInfo(tz))
                moved = new.inside - view.inside
                if not ledger.write_order(new, view.version):
                    raise LostRace("1 order(s) changed under us")
            if not ledger.undo_once(r.id):
                raise LostRace("a redemption was undone concurrently")
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
            line = {
                "idem_key": system_key("revert", r.id),
                "device": f"web-{actor}"[:40],
                "scan_id": f"rv{r.id}",
                "site_id": r.site_id,
                "gate": r.gate,
                "order_id": r.order_id,
                "code": r.code,
                "qty": r.qty,
                "direction": r.direction,
                "ok": True,
                "reason": "OK",
                "device_time": None,
                "server_time": now,
                "verdict": json.dumps(verdict),
                "op": "revert",
                "ref_id": r.id,
                "undone": False,
                "user": actor[:40],
                "fingerprint": None,
                "inside_delta": moved,
                "day_key": None,
            }
            ledger.record([line], [])
            _audit(ledger, actor, "revert", r.order_id, r.id, r.qty, reason, now)
            return {"reverted": r.id, "code": r.code, "units": r.qty}

    out: dict[str, Any] = _retrying(step)
    return out
