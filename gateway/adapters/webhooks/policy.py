# Outbound delivery decisions, pure: which ledger row becomes which event, retry waits, gap handling.
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Protocol

GAP_WAIT_S = 10.0
"""How long a hole in the redemption ids may stay open before it is skipped.

Ids come from a sequence (PostgreSQL) or max+1 (SQLite). On PostgreSQL a transaction that rolls back
(a lost race, retried) burns ids for good, and one that commits later than a newer one makes a hole
that fills in a moment. We wait for a hole only while the row after it is younger than GAP_WAIT_S: a
writer's transaction is far shorter, so a hole that old is a rolled-back id, never a late row.
"""


class Row(Protocol):
    id: int
    server_time: float


def backoff(failures: int, cap: float, base: float = 1.0) -> float:
    """Seconds to wait after `failures` consecutive failed attempts: 1, 2, 4, ... up to `cap`."""
    if failures <= 0:
        return 0.0
    return float(min(cap, base * 2 ** min(failures - 1, 30)))


def deliverable(cursor: int, rows: Sequence[Row], now: float, gap_wait: float = GAP_WAIT_S) -> int:
    """How many of `rows` (ids > cursor, ascending) may be handled now without jumping an open hole."""
    expected = cursor + 1
    n = 0
    for r in rows:
        if r.id != expected and now - r.server_time < gap_wait:
            break
        expected = r.id + 1
        n += 1
    return n


def event_type(op: str, ok: bool) -> str:
    if not ok:
        return "redemption.denied"
    if op == "annul":
        return "redemption.annulled"
    if op == "revert":
        return "redemption.reverted"
    return "redemption.ok"  # redeem, and exit (which consumes nothing but is a successful pass)


def event_of(r: Any, denials: bool) -> dict[str, Any] | None:
    """The event for one ledger row (with `site` and `external_ref` joined in), or None to skip it."""
    kind = event_type(r.op, r.ok)
    if kind == "redemption.denied" and not denials:
        return None
    try:
        verdict = json.loads(r.verdict)
    except (TypeError, ValueError):
        verdict = {}
    left = verdict.get("left") if isinstance(verdict, dict) else None
    detail = verdict.get("detail") if isinstance(verdict, dict) else None
    return {
        # Stable across retries, so a receiver drops the copies an at-least-once delivery may send.
        "id": f"hx-red-{r.id}",
        "type": kind,
        "created": r.server_time,
        "data": {
            "redemption_id": r.id,
            "op": r.op,
            "ref_id": r.ref_id,
            "ok": bool(r.ok),
            "reason": r.reason,
            "code": r.code,
            "external_ref": r.external_ref,
            "units": r.qty,
            "direction": r.direction,
            "site": r.site,
            "gate": r.gate,
            "device": r.device,
            "scan_id": r.scan_id,
            "user": r.user,
            "left": left,
            "detail": detail,
            "server_time": r.server_time,
            "device_time": r.device_time,
        },
    }
