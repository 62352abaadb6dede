# Applies a batch of requests inside one transaction: dedupe, decide, version-checked update, record.
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from gateway.adapters.db import hotsql
from gateway.adapters.db.models import Audit, Device, Order, Redemption, Site
from gateway.adapters.mqtt.contract import Verdict, reserved_device
from gateway.adapters.mqtt.oled import render
from gateway.domain.decisions import Ask, Decision, OrderView, annulled, decide, system_denial
from gateway.domain.validity import day_key

log = logging.getLogger(__name__)

ANNUL_WINDOW_S = 120.0


@dataclass(frozen=True, slots=True)
class Request:
    """One request from a device scan or the console, addressed by (device, sid)."""

    device: str
    sid: str
    code: str
    qty: int
    direction: str
    device_time: float | None
    op: str = "redeem"
    amt: int | None = None
    ref: str | None = None
    user: str | None = None
    pin: str | None = None
    key: str = ""  # idempotency key; empty: this device's scan key `d:<device>/<sid>`

    @property
    def idem(self) -> str:
        return self.key or idem_key(self.device, self.sid)

    @property
    def fingerprint(self) -> str:
        """What was asked, hashed: the same key with another fingerprint is a reused id, not a retry."""
        return fingerprint(self.op, self.code, self.qty, self.amt, self.direction, self.ref)


@dataclass(frozen=True, slots=True)
class Place:
    """Where a request is made: the device's site and gate, and the site's time zone."""

    site_id: int | None
    gate: str
    tz: tzinfo
    user: str | None = None  # the verifier signed in on the device, if any


class LostRace(Exception):
    """Another writer changed an order between our read and our update; redo the batch."""


# Key spaces that cannot collide: device ids and user names never contain ':' (both are validated),
# so a device named like a person or a system action can never read or block another's decisions.
def idem_key(device: str, sid: str) -> str:
    return f"d:{device}/{sid}"


def person_key(user: str, request_id: str) -> str:
    return f"u:{user}/{request_id}"


def system_key(action: str, ident: object) -> str:
    return f"s:{action}/{ident}"


def legacy_fingerprint(req: Request) -> str | None:
    """What a decision stored before fingerprints existed is matched by (migration 0006): the code
    and the direction of a redeem or exit. None for anything else, which never matches."""
    if req.op != "redeem":
        return None
    return f"legacy:{req.direction}:{req.code}"


def fingerprint(op: str, code: str, qty: int, amt: int | None, direction: str, ref: str | None) -> str:
    raw = json.dumps([op, code, qty, amt, direction, ref], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


ORDER_COLS = (
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
    Order.kind,
    Order.rules,
    Order.day_key,
    Order.day_used,
    Order.inside,
    Order.inside_site_id,
    Order.version,
)


def load_orders(conn: Connection, codes: set[str], ids: set[int] | None = None) -> dict[str, OrderView]:
    """Orders by code (a short manual-entry code finds its order too); keys are what was asked for."""
    out: dict[str, OrderView] = {}
    if codes:
        for t in hotsql.select_orders(conn, list(codes)):
            out[t[1]] = OrderView(*t)
        missing = {c.replace("-", "").upper() for c in codes if c not in out}
        if missing:
            rows = conn.execute(
                select(Order.short_code, *ORDER_COLS).where(Order.short_code.in_(missing))
            ).all()
            by_short = {r[0]: OrderView(*r[1:]) for r in rows}
            for c in codes:
                v = by_short.get(c.replace("-", "").upper())
                if c not in out and v is not None:
                    out[c] = v
    if ids:
        for r in conn.execute(select(*ORDER_COLS).where(Order.id.in_(ids))):
            out.setdefault(r.code, OrderView(*r))
    return out


def stored_verdicts(conn: Connection, keys: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    """key → (stored verdict JSON, request fingerprint) for the keys decided before."""
    if not keys:
        return {}
    return hotsql.select_verdicts(conn, list(keys))


_REF_COLS = (
    Redemption.idem_key,
    Redemption.id,
    Redemption.order_id,
    Redemption.qty,
    Redemption.ok,
    Redemption.op,
    Redemption.undone,
    Redemption.server_time,
    Redemption.direction,
    Redemption.inside_delta,
    Redemption.day_key,
    Redemption.site_id,
    Redemption.code,
    Redemption.gate,
)


def _refs(conn: Connection, keys: list[str]) -> dict[str, Any]:
    if not keys:
        return {}
    return {r.idem_key: r for r in conn.execute(select(*_REF_COLS).where(Redemption.idem_key.in_(keys)))}


def redemption_ref(conn: Connection, redemption_id: int) -> Any:
    """One recorded redemption with what an undo needs (None when there is no such id)."""
    return conn.execute(select(*_REF_COLS).where(Redemption.id == redemption_id)).first()


def after(order: OrderView, d: Decision, place: Place, now: float) -> OrderView:
    """The order once decision `d` is applied (units, per-day counter, units inside)."""
    changes: dict[str, Any] = {}
    if d.consume:
        today = day_key(now, place.tz)
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
    return replace(order, **changes) if changes else order


def undoable(ref: Any) -> str | None:
    """None when the recorded redemption may be undone, else why not (entries that succeeded only)."""
    if ref is None:
        return "no such scan from this device"
    if not ref.ok or ref.op != "redeem":
        return "that scan redeemed nothing"
    if ref.undone:
        return "already undone"
    return None


def undo(
    conn: Connection,
    order: OrderView,
    ref: Any,
    tz: tzinfo,
    *,
    flow_pending: Sequence[tuple[int, int | None]] = (),
    consumed_pending: bool = False,
    undone_ids: Sequence[int] = (),
) -> OrderView:
    """The order once redemption `ref` is annulled or reverted: exactly what it changed comes back.

    - its units (`qty`) return; the per-day count drops only if the order still counts that day;
    - the units it moved inside leave unless they were seen leaving since. Every row records what it
      moved (`inside_delta`: entries +, exits and undos -). Walking the rows after `ref` in order
      (then `flow_pending`, decided earlier in the same batch), an outflow is first the people of
      entries made after `ref` and still counted (latest in, first out); only the rest is `ref`'s
      (or older) people leaving. Each outflow is credited once, and an undo row records what it
      took out, so undoing several entries never leaves a ghost inside nor lets one exit count twice;
    - the last use becomes the latest remaining use in the ledger (a minimum interval then runs from
      that one), unless a use in the same batch (`consumed_pending`) is later anyway.
    """
    units = int(ref.qty) if ref.op == "redeem" else 0
    ref_day = ref.day_key or day_key(ref.server_time, tz)
    day_used = max(0, order.day_used - units) if order.day_key == ref_day else order.day_used
    inside = order.inside
    if ref.inside_delta > 0:
        rows = conn.execute(
            select(Redemption.inside_delta, Redemption.op, Redemption.ref_id)
            .where(Redemption.order_id == order.id, Redemption.id > ref.id, Redemption.inside_delta != 0)
            .order_by(Redemption.id)
        ).all()
        flows = [(int(r.inside_delta), r.ref_id if r.op in ("annul", "revert") else None) for r in rows]
        inside = max(0, inside - still_inside(int(ref.inside_delta), int(ref.id), [*flows, *flow_pending]))
    changes: dict[str, Any] = {
        "used": order.used - units,
        "day_used": day_used,
        "inside": inside,
        "inside_site_id": order.inside_site_id if inside else None,
    }
    if units and not consumed_pending:
        last = conn.execute(
            select(Redemption.server_time, Redemption.gate)
            .where(
                Redemption.order_id == order.id,
                Redemption.ok.is_(True),
                Redemption.op == "redeem",
                Redemption.qty > 0,
                Redemption.direction == "in",
                Redemption.undone.is_(False),
                Redemption.id.not_in([ref.id, *undone_ids]),
            )
            .order_by(Redemption.server_time.desc(), Redemption.id.desc())
            .limit(1)
        ).first()
        changes["last_used_at"] = last.server_time if last is not None else None
        changes["last_used_gate"] = last.gate if last is not None else None
    return replace(order, **changes)


def still_inside(entered: int, entry_id: int, flows_after: Sequence[tuple[int, int | None]]) -> int:
    """How many of entry `entry_id`'s `entered` people are still in, given the moves after it (pure).

    `flows_after`: (units moved, id of the entry an undo undid — None for entries and exits), in order.
    An exit goes first to the people of later entries still counted (latest in, first out), the rest
    to this entry's people. An undo only ever takes out the people of the entry it undid: a later
    entry's undo shrinks the later people, an older entry's undo does not concern this one. See `undo`.
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


def annul_decision(ref: Any, now: float, window: float) -> Decision | None:
    """None when the referenced redemption may be annulled, else the refusal."""
    why = undoable(ref)
    if why is None and now - ref.server_time > window:
        why = f"too late: annul within {int(window)} s"
    return None if why is None else system_denial("ANNUL_REFUSED", why)


def write_orders(conn: Connection, changed: dict[int, OrderView], versions: dict[int, int]) -> None:
    """Write the new state of every changed order, each only if its version is still the one we read.

    A row whose version moved was changed by another writer (another gateway process, a refund) after
    we read it: the update matches nothing, the total falls short, and the batch is redone.
    """
    if not changed:
        return
    rows = [
        (
            o.used,
            o.last_used_at,
            o.last_used_gate,
            o.day_key,
            o.day_used,
            o.inside,
            o.inside_site_id,
            versions[order_id] + 1,
            order_id,
            versions[order_id],
        )
        for order_id, o in changed.items()
    ]
    matched = hotsql.update_orders(conn, rows)
    if matched != len(rows):
        raise LostRace(f"{len(rows) - matched} order(s) changed under us")


def _internal(sid: str) -> Verdict:
    return render(sid, system_denial("INTERNAL", "gateway error, retry"))


def apply_batch(
    conn: Connection,
    items: Sequence[tuple[Request, Place]],
    now: float,
    annul_window: float = ANNUL_WINDOW_S,
    *,
    seen: dict[str, tuple[str, str | None]] | None = None,
) -> list[Verdict]:
    """Decide every request of the batch in the caller's transaction and return verdicts in order.

    The caller commits, and publishes the verdicts only after that commit succeeds. A request whose
    key was decided before (in an earlier batch or earlier in this one) gets the stored verdict and
    changes nothing — if it asks the same thing; a different request under a used key is refused
    `SID_REUSED` and audited. `check` requests are read-only: never recorded, never change an order.
    A request whose decision fails on its own (not the database) gets a transient INTERNAL answer
    and changes nothing; the rest of the batch is decided normally. Raises LostRace when a concurrent
    writer changed an order we touch, and IntegrityError when it recorded the same key.
    """
    keys = [r.idem for r, _ in items]
    if seen is None:  # the caller may have looked them up already (to run transient checks after)
        seen = stored_verdicts(conn, [k for (r, _), k in zip(items, keys, strict=True) if r.op != "check"])
    refs = _refs(conn, [idem_key(r.device, r.ref) for r, _ in items if r.op == "annul" and r.ref])
    found = load_orders(
        conn, {r.code for r, _ in items if r.code}, {x.order_id for x in refs.values() if x.order_id}
    )
    views = {o.id: o for o in found.values()}  # one current view per order, however it was named
    index = {k: o.id for k, o in found.items()}
    versions = {o.id: o.version for o in views.values()}
    changed: dict[int, OrderView] = {}
    # (units moved inside, entry an undo undid), per order, earlier in this batch
    flow_in_batch: dict[int, list[tuple[int, int | None]]] = {}
    consumed_in_batch: set[int] = set()
    undone: list[int] = []
    new_rows: list[dict[str, Any]] = []
    audits: list[dict[str, Any]] = []
    out: list[Verdict] = []
    batch_verdicts: dict[str, tuple[Verdict, str]] = {}
    for (req, place), key in zip(items, keys, strict=True):
        fp = req.fingerprint
        if req.op != "check":
            earlier = batch_verdicts.get(key)
            stored = seen.get(key)
            if earlier is not None or stored is not None:
                stored_fp: str | None
                if earlier is not None:
                    v, stored_fp = earlier
                else:
                    assert stored is not None
                    v, stored_fp = Verdict.from_json(stored[0]), stored[1]
                if stored_fp == fp or stored_fp == legacy_fingerprint(req):
                    out.append(v)
                    continue
                # Fail closed: rows from before fingerprints existed (None) never replay to another ask.
                log.warning("%s: id reused for a different request", key)
                out.append(render(req.sid, system_denial("SID_REUSED", "this scan id was used before")))
                audits.append(_reuse_audit(req, key, order_id=index.get(req.code), now=now))
                continue
        try:
            decided = _decide_one(
                conn,
                req,
                place,
                now,
                annul_window,
                refs,
                views,
                index,
                flow_in_batch,
                consumed_in_batch,
                undone,
            )
        except SQLAlchemyError:
            raise
        except Exception:
            # One poison request (a value no rule expected) must not take the batch with it.
            log.exception("deciding %s failed", key)
            out.append(_internal(req.sid))
            continue
        d, order, new, ref_id, units = decided
        v = render(req.sid, d)
        out.append(v)
        if req.op == "check":
            continue
        batch_verdicts[key] = (v, fp)
        moved = 0  # units this row moves inside (+) or out (-); an undo records what it took out
        if new is not None and order is not None:
            views[order.id] = changed[order.id] = new
            moved = new.inside - order.inside
            if moved:
                flow_in_batch.setdefault(order.id, []).append((moved, ref_id))
            if d.consume:
                consumed_in_batch.add(order.id)
        new_rows.append(
            {
                "idem_key": key,
                "device": req.device,
                "scan_id": req.sid,
                "site_id": place.site_id,
                "gate": place.gate,
                "order_id": order.id if order is not None else None,
                "code": (order.code if order is not None else req.code)[:128],
                "qty": units,
                "direction": req.direction,
                "ok": d.ok,
                "reason": d.reason,
                "device_time": req.device_time,
                "server_time": now,
                "verdict": v.to_json(),
                "op": "annul" if req.op == "annul" else ("exit" if req.direction == "out" else "redeem"),
                "ref_id": ref_id,
                "undone": False,
                "user": req.user or place.user,
                "fingerprint": fp,
                "inside_delta": moved,
                "day_key": day_key(now, place.tz) if d.ok and d.consume else None,
            }
        )
    write_orders(conn, changed, versions)
    if undone:
        res = conn.execute(
            update(Redemption)
            .where(Redemption.id.in_(undone), Redemption.undone.is_(False))
            .values(undone=True)
        )
        if res.rowcount != len(undone):
            raise LostRace("a redemption was undone concurrently")
    if new_rows:
        hotsql.insert_redemptions(conn, new_rows)
    if audits:
        conn.execute(insert(Audit), audits)
    return out


def _reuse_audit(req: Request, key: str, order_id: int | None, now: float) -> dict[str, Any]:
    what = f"{key}: reused for {req.op} {req.code[:60]!r} qty {req.qty} dir {req.direction}"
    return {
        "at": now,
        "actor": (req.user or req.device)[:64],
        "action": "sid_reused",
        "order_id": order_id,
        "redemption_id": None,
        "units": 0,
        "reason": what[:200],
    }


def _decide_one(
    conn: Connection,
    req: Request,
    place: Place,
    now: float,
    annul_window: float,
    refs: dict[str, Any],
    views: dict[int, OrderView],
    index: dict[str, int],
    flow_in_batch: dict[int, list[tuple[int, int | None]]],
    consumed_in_batch: set[int],
    undone: list[int],
) -> tuple[Decision, OrderView | None, OrderView | None, int | None, int]:
    """(decision, order as read, order after, id of the redemption undone, units recorded)."""
    if req.op == "annul":
        ref = refs.get(idem_key(req.device, req.ref or ""))
        refusal = annul_decision(ref, now, annul_window)
        if refusal is None and ref is not None and ref.id in undone:
            refusal = system_denial("ANNUL_REFUSED", "already undone")
        order = views.get(ref.order_id) if ref is not None and ref.order_id else None
        if refusal is not None or ref is None:
            return refusal or system_denial("ANNUL_REFUSED", "no such scan"), order, None, None, 0
        units = int(ref.qty)
        new = None
        if order is not None:
            new = undo(
                conn,
                order,
                ref,
                place.tz,
                flow_pending=flow_in_batch.get(order.id, ()),
                consumed_pending=order.id in consumed_in_batch,
                undone_ids=undone,
            )
        undone.append(ref.id)
        left = new.left if new is not None else None
        d = annulled(units, left)
        return d, order, new, ref.id, units
    oid = index.get(req.code)
    order = views.get(oid) if oid is not None else None
    d = decide(order, Ask(req.op, req.qty, req.amt, req.direction), place.site_id, place.gate, now, place.tz)
    new = None
    if d.ok and order is not None and req.op != "check" and (d.consume or d.inside):
        new = after(order, d, place, now)
    units = d.consume if d.ok else (req.amt or req.qty)
    return d, order, new, None, units


def load_place(conn: Connection, device: str, auto_site: str, now: float, default_tz: str) -> Place | None:
    """The device's site and gate; registers an unknown device at `auto_site` (None when refused)."""
    row = conn.execute(
        select(Device.site_id, Device.gate, Site.timezone, Device.user)
        .select_from(Device)
        .outerjoin(Site, Site.id == Device.site_id)
        .where(Device.device_id == device)
    ).first()
    if row is not None:
        return Place(row.site_id, row.gate or device, ZoneInfo(row.timezone or default_tz), row.user)
    if not auto_site or reserved_device(device):
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
