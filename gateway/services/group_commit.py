# One batch of requests decided in one transaction (group commit): redone on database errors, poison isolated.
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.domain.codes import forged
from gateway.domain.decisions import system_denial
from gateway.domain.ratelimit import InOrderBuckets, TokenBuckets
from gateway.domain.requests import Place, Request
from gateway.domain.verdict import Verdict
from gateway.services.ledger import apply_batch
from gateway.services.ledger_store import Contended
from gateway.services.messages import Render, no_ack
from gateway.services.pins import sign
from gateway.services.places import PlaceCache
from gateway.services.ports.database import Tx
from gateway.services.ports.writer import Writer
from gateway.services.stats import Measures

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Counters:
    scans: int = 0
    verdicts: int = 0
    redeemed: int = 0
    malformed: int = 0
    dropped: int = 0
    rate_limited: int = 0
    batches: int = 0
    max_batch: int = 0
    db_retries: int = 0
    internal_errors: int = 0
    statuses: int = 0
    forged: int = 0
    measures: Measures = field(default_factory=Measures)


@dataclass(slots=True)
class Pending:
    request: Request
    place: Place | None  # None: a device scan, placed by looking the device up
    reply: Callable[[Verdict], None]
    ack: Callable[[], None] = no_ack
    early: Verdict | None = None  # a transient answer decided before the ledger (forged, rate limit)
    gated: bool = False  # the forged / rate-limit gate has run (once, however often the batch is redone)


@dataclass(slots=True)
class Gate:
    """The transient checks before the ledger: signed codes, and scans (and PIN tries) per device."""

    signing_key: bytes | None
    require_signed: bool
    limits: InOrderBuckets  # scans per device, refused in the device's order
    pin_limits: TokenBuckets  # wrong PINs per device
    pin_key: bytes = b""  # the PIN look-up index's key (VAR_DIR/pin-key; services/pins.py)


class GroupCommit:
    """Owns the only writing connection of the hot path (`writer`); used from the service thread only."""

    def __init__(
        self,
        writer: Writer,
        places: PlaceCache,
        gate: Gate,
        counters: Counters,
        annul_window_s: float,
        monotonic: Callable[[], float],
        render: Render,
    ) -> None:
        self.writer = writer
        self.render = render
        self.places = places
        self.gate = gate
        self.counters = counters
        self.annul_window_s = annul_window_s
        self.monotonic = monotonic
        self.listeners: list[Callable[[dict[str, Any]], None]] = []

    def _gate(self, p: Pending, mono: float) -> None:
        """Transient checks for a request not decided before: a forged code, a device scanning too fast.

        Run once per request, and only after the stored verdicts were looked up: a retry of a
        committed scan always gets its stored verdict, whatever the signing key or rate says now.
        """
        if p.gated:
            return
        p.gated = True
        code = p.request.code
        g = self.gate
        if p.request.op in ("redeem", "check") and code and forged(code, g.signing_key, g.require_signed):
            self.counters.forged += 1
            p.early = self.render(p.request.sid, system_denial("FORGED", "signature does not match"))
        elif p.place is None and not g.limits.allow(p.request.device, p.request.sid, mono):
            self.counters.rate_limited += 1
            p.early = self.render(p.request.sid, system_denial("RATE_LIMITED", "too many scans per second"))

    def decide(self, pending: list[Pending], now: float) -> None:
        """Decide, commit, and only then answer and acknowledge everything of the batch.

        Device statuses are not written here: they wait in their own buffer and are written in their
        own transactions (services/device_status.py), after the scans queued with them."""
        if not pending:
            return
        mono = self.monotonic()
        verdicts: list[Verdict] | None = None
        failed: Exception | None = None
        answer: list[Pending] = []
        early: list[tuple[Pending, Verdict]] = []
        # Contention on an order is settled inside the batch, request by request (conditional updates,
        # services/ledger.py). What redoes the whole batch is the database itself failing: a lost
        # connection, a deadlock, or another worker recording the same scan first (the writer's
        # `retryable`: the redo then finds its stored verdict).
        w = self.writer
        for attempt in range(5):
            try:
                began = self.monotonic()
                with w.batch() as tx:
                    answer, early, decided = self._attempt(tx, pending, now, mono)
                # Committed: only now may anyone hear the outcome.
                self.counters.measures.commit.observe(self.monotonic() - began)
                verdicts = decided
                break
            except Exception as err:
                if isinstance(err, (Contended, *w.retryable)):
                    if isinstance(err, w.broken):
                        self.drop_writer()
                    self.counters.db_retries += 1
                    log.warning("batch retry %d after %s: %s", attempt + 1, type(err).__name__, err)
                    self.places.forget()
                    time.sleep(0.01 * (attempt + 1))
                    continue
                log.exception("batch of %d scans failed", len(pending))
                self.drop_writer()
                self.places.forget()  # registrations made in the rolled-back transaction are gone too
                failed = err
                break
        if verdicts is None and failed is not None and len(pending) > 1:
            # Not the database: one request of the batch is poison. Decide each on its own, so only
            # that one gets INTERNAL and everyone else their normal verdict.
            for p in pending:
                self.decide([p], now)
            return
        if verdicts is None:
            # Nothing was committed; devices keep the scan in their outbox and send it again.
            self.counters.internal_errors += len(pending)
            for p in reversed(pending):  # last first: each returned one goes to its hold's head
                if p.place is None and p.gated and p.early is None:
                    # Let through by the rate limit but not decided: it keeps its turn (and its token).
                    self.gate.limits.returned(p.request.device, p.request.sid, mono)
            for p in pending:
                p.reply(self.render(p.request.sid, system_denial("INTERNAL", "gateway error, retry")))
                p.ack()
            return
        for p, v in early:
            p.reply(v)
            p.ack()
        c = self.counters
        c.batches += 1
        c.max_batch = max(c.max_batch, len(answer))
        c.measures.batch.observe(len(answer) + len(early))
        for p, v in zip(answer, verdicts, strict=True):
            if v.ok:
                c.redeemed += 1
            if p.place is None:
                # Decided: a refused copy of it (a resend in the same batch, or one this worker refused
                # before another decided it) must not hold the device's later scans.
                self.gate.limits.settled(p.request.device, p.request.sid, mono)
            p.reply(v)
            p.ack()
        self._notify(answer, verdicts, now)

    def _attempt(
        self, tx: Tx, pending: list[Pending], now: float, mono: float
    ) -> tuple[list[Pending], list[tuple[Pending, Verdict]], list[Verdict]]:
        """One try inside the open transaction: (sent to the ledger, answered before it, its verdicts)."""
        answer: list[Pending] = []
        early: list[tuple[Pending, Verdict]] = []
        items: list[tuple[Request, Place]] = []
        placed: list[tuple[Pending, Place]] = []
        for p in pending:
            place = p.place or self.places.get(tx, p.request.device, now)
            if place is None:
                early.append(
                    (p, self.render(p.request.sid, system_denial("UNKNOWN_DEVICE", "not registered")))
                )
                continue
            placed.append((p, place))
        keyed = [p.request.idem for p, _ in placed if p.request.op not in ("check", "login", "logout")]
        seen = tx.ledger.verdicts(keyed)
        for p, place in placed:
            if p.request.op in ("login", "logout"):
                g = self.gate
                signed = sign(tx, p.request, place, self.places, g.pin_limits, mono, g.pin_key)
                early.append((p, self.render(p.request.sid, signed)))
                continue
            if p.request.op == "check" or p.request.idem not in seen:
                self._gate(p, mono)
                if p.early is not None:
                    early.append((p, p.early))
                    continue
            items.append((p.request, place))
            answer.append(p)
        decided = apply_batch(tx.ledger, items, now, self.annul_window_s, render=self.render, seen=seen)
        return answer, early, decided

    def drop_writer(self) -> None:
        self.writer.drop()

    def _notify(self, answer: list[Pending], verdicts: list[Verdict], now: float) -> None:
        if not self.listeners:
            return
        for p, v in zip(answer, verdicts, strict=True):
            event = {
                "t": now,
                "device": p.request.device,
                "code": p.request.code,
                "verdict": v.to_dict(),
                "key": p.request.idem,  # the ledger key the decision is stored under (scan or person)
                "site_id": p.place.site_id if p.place is not None else None,  # typed: the asked site
                "typed": p.place is not None,
            }
            for fn in list(self.listeners):
                try:
                    fn(event)
                except Exception:
                    log.exception("listener failed")
