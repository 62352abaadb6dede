# Applies a batch of redemption requests inside one transaction: dedupe, decide, conditional update, record.
from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import tzinfo
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.contract import Verdict
from gateway.db.models import Device, Order, Redemption, Site
from gateway.rules import Decision, OrderView, decide

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Request:
    """One redemption request, from a device scan or the console, addressed by (device, sid)."""

    device: str
    sid: str
    code: str
    qty: int
    direction: str
    device_time: float | None


@dataclass(frozen=True, slots=True)
class Place:
    """Where a request is made: the device's site and gate, and the site's time zone."""

    site_id: int | None
    gate: str
    tz: tzinfo


class LostRace(Exception):
    """Another writer changed an order between our read and our conditional update; redo the batch."""


def idem_key(device: str, sid: str) -> str:
    return f"{device}/{sid}"


def verdict_of(sid: str, d: Decision) -> Verdict:
    return Verdict(sid, d.ok, d.reason, d.l1, d.l2, d.detail, d.sound, d.left)


_ORDER_COLS = (
    Order.id,
    Order.code,
    Order.title,
    Order.quantity,
    Order.used,
    Order.refunded,
    Order.status,
    Order.site_id,
    Order.valid_from,
    Order.valid_until,
    Order.last_used_at,
    Order.last_used_gate,
)


def load_orders(conn: Connection, codes: set[str]) -> dict[str, OrderView]:
    if not codes:
        return {}
    rows = conn.execute(select(*_ORDER_COLS).where(Order.code.in_(codes))).all()
    return {r.code: OrderView(*r) for r in rows}  # type: ignore[call-arg]


def stored_verdicts(conn: Connection, keys: Sequence[str]) -> dict[str, str]:
    if not keys:
        return {}
    rows = conn.execute(select(Redemption.idem_key, Redemption.verdict).where(Redemption.idem_key.in_(keys)))
    return {k: v for k, v in rows}


def apply_batch(conn: Connection, items: Sequence[tuple[Request, Place]], now: float) -> list[Verdict]:
    """Decide every request of the batch in the caller's transaction and return verdicts in order.

    The caller commits, and publishes the verdicts only after that commit succeeds. Requests seen
    before (same device and sid, in an earlier batch or earlier in this one) get their stored verdict
    and change nothing. Raises LostRace when a concurrent writer (another gateway process on
    PostgreSQL) won a race for an order's units, and IntegrityError when it recorded the same sid.
    """
    keys = [idem_key(r.device, r.sid) for r, _ in items]
    seen = stored_verdicts(conn, keys)
    orders = load_orders(conn, {r.code for r, _ in items})
    deltas: dict[int, int] = {}
    touched: dict[int, OrderView] = {}
    new_rows: list[dict[str, object]] = []
    out: list[Verdict] = []
    batch_verdicts: dict[str, Verdict] = {}
    for (req, place), key in zip(items, keys, strict=True):
        if key in batch_verdicts:
            out.append(batch_verdicts[key])
            continue
        if key in seen:
            v = Verdict.from_json(seen[key])
            batch_verdicts[key] = v
            out.append(v)
            continue
        order = orders.get(req.code)
        d = decide(order, req.qty, place.site_id, now, place.tz)
        if d.ok and order is not None:
            order = replace(order, used=order.used + d.consume, last_used_at=now, last_used_gate=place.gate)
            orders[req.code] = order
            deltas[order.id] = deltas.get(order.id, 0) + d.consume
            touched[order.id] = order
        v = verdict_of(req.sid, d)
        batch_verdicts[key] = v
        out.append(v)
        new_rows.append(
            {
                "idem_key": key,
                "device": req.device,
                "scan_id": req.sid,
                "site_id": place.site_id,
                "gate": place.gate,
                "order_id": order.id if order is not None else None,
                "code": req.code,
                "qty": req.qty,
                "direction": req.direction,
                "ok": d.ok,
                "reason": d.reason,
                "device_time": req.device_time,
                "server_time": now,
                "verdict": v.to_json(),
            }
        )
    for order_id, delta in deltas.items():
        o = touched[order_id]
        # The WHERE clause is what makes over-redemption impossible even with several writers: the
        # units are re-checked against the row as it is at update time, not as we read it.
        res = conn.execute(
            update(Order)
            .where(
                Order.id == order_id,
                Order.status == "active",
                Order.used + Order.refunded + delta <= Order.quantity,
            )
            .values(used=Order.used + delta, last_used_at=o.last_used_at, last_used_gate=o.last_used_gate)
        )
        if res.rowcount != 1:
            raise LostRace(f"order {order_id} changed under us")
    if new_rows:
        conn.execute(insert(Redemption), new_rows)
    return out


def load_place(conn: Connection, device: str, auto_site: str, now: float, default_tz: str) -> Place | None:
    """The device's site and gate; registers an unknown device at `auto_site` (None when refused)."""
    row = conn.execute(
        select(Device.site_id, Device.gate, Site.timezone)
        .select_from(Device)
        .outerjoin(Site, Site.id == Device.site_id)
        .where(Device.device_id == device)
    ).first()
    if row is not None:
        return Place(row.site_id, row.gate or device, ZoneInfo(row.timezone or default_tz))
    if not auto_site:
        return None
    site = conn.execute(select(Site.id, Site.timezone).where(Site.slug == auto_site)).first()
    site_id, tz = (site.id, site.timezone) if site is not None else (None, default_tz)
    try:
        with conn.begin_nested():
            conn.execute(
                insert(Device).values(
                    device_id=device,
                    site_id=site_id,
                    gate=device,
                    mode="handheld",
                    online=False,
                    created_at=now,
                )
            )
    except IntegrityError:
        log.debug("device %s registered concurrently", device)
    log.info("registered new device %s at site %s", device, auto_site)
    return Place(site_id, device, ZoneInfo(tz))
