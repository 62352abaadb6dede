# Applies a batch of requests inside one transaction: dedupe, decide, conditional update, record.
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from gateway.domain.decisions import Ask, Decision, OrderView, annulled, decide, system_denial
from gateway.domain.order_state import ANNUL_WINDOW_S, after, annul_decision, use
from gateway.domain.requests import Place, Request, idem_key, legacy_fingerprint
from gateway.domain.validity import counting_day
from gateway.domain.verdict import Verdict
from gateway.services.ledger_store import Contended, apply_use, undo, write_undo
from gateway.services.messages import Render
from gateway.services.ports.ledger import Ledger, Recorded

# The request types a batch takes come from the domain; named here too for the callers that feed it.
__all__ = ["Place", "Request", "apply_batch", "idem_key"]

log = logging.getLogger(__name__)


def apply_batch(
    ledger: Ledger,
    items: Sequence[tuple[Request, Place]],
    now: float,
    annul_window: float = ANNUL_WINDOW_S,
    *,
    render: Render,
    seen: dict[str, tuple[str, str | None]] | None = None,
) -> list[Verdict]:
    """Decide every request of the batch in the caller's transaction and return verdicts in order.

    `render` fits each decision to the device's screen (the verdict is stored as rendered, so a
    repeat is answered byte for byte). The caller commits, and publishes the verdicts only after that commit succeeds. A request whose
    key was decided before (in an earlier batch or earlier in this one) gets the stored verdict and
    changes nothing — if it asks the same thing; a different request under a used key is refused
    `SID_REUSED` and audited. `check` requests are read-only: never recorded, never change an order.
    A request whose decision fails on its own (not the database) gets a transient INTERNAL answer
    and changes nothing; the rest of the batch is decided normally. Each decision is applied at once
    with a conditional update that holds only while what it was decided on still does; when another
    writer changed the order in between, that one request is decided again on the order as it is now
    (never the whole batch). Raises the store's own error when a concurrent writer recorded the same
    key, and Contended when an order kept changing beyond all reason.
    """
    keys = [r.idem for r, _ in items]
    if seen is None:  # the caller may have looked them up already (to run transient checks after)
        seen = ledger.verdicts([k for (r, _), k in zip(items, keys, strict=True) if r.op != "check"])
    recorded = ledger.recorded([idem_key(r.device, r.ref) for r, _ in items if r.op == "annul" and r.ref])
    found = ledger.orders(
        {r.code for r, _ in items if r.code}, {x.order_id for x in recorded.values() if x.order_id}
    )
    views = {o.id: o for o in found.values()}  # one current view per order, however it was named
    index = {k: o.id for k, o in found.items()}
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
            if req.op == "annul":
                decided = _annul(
                    ledger,
                    req,
                    place,
                    now,
                    annul_window,
                    recorded,
                    views,
                    flow_in_batch,
                    consumed_in_batch,
                    undone,
                )
            else:
                decided = _redeem(ledger, req, place, now, views, index)
        except Contended:
            raise
        except ledger.failures:  # the database failing is never one request's fault
            raise
        except Exception:
            # One poison request (a value no rule expected) must not take the batch with it.
            log.exception("deciding %s failed", key)
            out.append(render(req.sid, system_denial("INTERNAL", "gateway error, retry")))
            continue
        d, order, moved, ref_id, units = decided
        v = render(req.sid, d)
        out.append(v)
        if req.op == "check":
            continue
        batch_verdicts[key] = (v, fp)
        if order is not None:
            if moved:
                flow_in_batch.setdefault(order.id, []).append((moved, ref_id))
            if d.ok and d.consume:
                consumed_in_batch.add(order.id)
        counts = d.ok and d.consume and order is not None
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
                "day_key": counting_day(now, place.tz, order.day_key) if counts and order else None,
            }
        )
    ledger.record(new_rows, audits)
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


# A conditional update that fails means another writer committed a change to that order since our
# read; each time we read it again and the domain decides again. Every failure is someone else's
# progress, so this bound is never reached in practice; if it is, the batch is redone (Contended).
REDECIDE = 50

# (decision, order as read, units moved inside, id of the redemption undone, units recorded)
Decided = tuple[Decision, OrderView | None, int, int | None, int]


def _redeem(
    ledger: Ledger,
    req: Request,
    place: Place,
    now: float,
    views: dict[int, OrderView],
    index: dict[str, int],
) -> Decided:
    """Decide a redeem, check or exit with the domain and apply it with one conditional update."""
    oid = index.get(req.code)
    ask = Ask(req.op, req.qty, req.amt, req.direction)
    for _ in range(REDECIDE):
        order = views.get(oid) if oid is not None else None
        d = decide(order, ask, place.site_id, place.gate, now, place.tz)
        units = d.consume if d.ok else (req.amt or req.qty)
        change = use(order, d, place, now) if order is not None and req.op != "check" else None
        if change is None:
            return d, order, 0, None, units
        assert order is not None
        now_is = apply_use(ledger, change, after(order, d, place, now))
        if now_is is not None:
            views[order.id] = now_is
            return d, order, change.inside, None, units
        fresh = ledger.order(order.id)
        if fresh is None:
            raise Contended(f"order {order.id} vanished")
        views[order.id] = fresh
    raise Contended(f"order {oid} kept changing")


def _annul(
    ledger: Ledger,
    req: Request,
    place: Place,
    now: float,
    annul_window: float,
    recorded: dict[str, Recorded],
    views: dict[int, OrderView],
    flow_in_batch: dict[int, list[tuple[int, int | None]]],
    consumed_in_batch: set[int],
    undone: list[int],
) -> Decided:
    """A device undoes its own redemption: claim it (undone once), then write the order back."""
    key = idem_key(req.device, req.ref or "")
    for _ in range(REDECIDE):
        ref = recorded.get(key)
        refusal = annul_decision(ref, now, annul_window)
        if refusal is None and ref is not None and ref.id in undone:
            refusal = system_denial("ANNUL_REFUSED", "already undone")
        order = views.get(ref.order_id) if ref is not None and ref.order_id else None
        if refusal is not None or ref is None:
            return refusal or system_denial("ANNUL_REFUSED", "no such scan"), order, 0, None, 0
        if ledger.undo_once(ref.id):
            break
        recorded.update(ledger.recorded([key]))  # another writer undid it first: read it again, decide again
    else:
        raise Contended(f"{key} kept changing")
    units = int(ref.qty)
    moved, left = 0, None
    if order is not None:
        for _ in range(REDECIDE):
            new = undo(
                ledger,
                order,
                ref,
                place.tz,
                flow_pending=flow_in_batch.get(order.id, ()),
                consumed_pending=order.id in consumed_in_batch,
                undone_ids=undone,
            )
            written = write_undo(ledger, new, order.version)
            if written is not None:
                views[order.id] = written
                moved, left = written.inside - order.inside, written.left
                break
            fresh = ledger.order(order.id)
            if fresh is None:
                raise Contended(f"order {order.id} vanished")
            order = fresh
        else:
            raise Contended(f"order {order.id} kept changing")
    undone.append(ref.id)
    return annulled(units, left), order, moved, ref.id, units
