# The service loop: drains scans into one transaction (group commit), commits, then publishes verdicts.
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Connection, Engine, update
from sqlalchemy.exc import IntegrityError, OperationalError

from gateway.adapters.db.engine import writer
from gateway.adapters.db.models import Device
from gateway.adapters.mqtt.contract import (
    DEVICE_RE,
    Malformed,
    Verdict,
    parse_scan,
    reserved_device,
    split_topic,
    verdict_topic,
)
from gateway.adapters.mqtt.oled import oled_text, render
from gateway.domain.codes import forged
from gateway.domain.decisions import system_denial
from gateway.domain.errors import Unavailable
from gateway.domain.ratelimit import TokenBuckets
from gateway.services.auto_checkout import run_checkouts
from gateway.services.ledger import (
    LostRace,
    Place,
    Request,
    apply_batch,
    load_place,
    person_key,
    stored_verdicts,
)
from gateway.services.pins import sign_in, sign_out

log = logging.getLogger(__name__)

Publish = Callable[[str, str], None]


def _no_ack() -> None:
    return None


@dataclass(slots=True)
class Inbound:
    """A raw MQTT message handed over by the network thread.

    `ack` tells the broker the message is done with; it is called only once the message's outcome is
    committed (or it was answered without anything to commit), so a gateway crash before that leaves
    the scan with the broker, which delivers it again to the persistent session.
    """

    topic: str
    payload: bytes
    ack: Callable[[], None] = _no_ack


@dataclass(slots=True)
class ConsoleRedeem:
    """A redemption typed in the console or sent over REST; answered through `future`."""

    request: Request
    site_id: int | None
    gate: str
    tz_name: str
    future: Future[Verdict] = field(default_factory=Future)


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


@dataclass(slots=True)
class _Pending:
    request: Request
    place: Place | None  # None: a device scan, placed by looking the device up
    reply: Callable[[Verdict], None]
    ack: Callable[[], None] = _no_ack
    early: Verdict | None = None  # a transient answer decided before the ledger (forged, rate limit)
    gated: bool = False  # the forged / rate-limit gate has run (once, however often the batch is redone)


class RedemptionService:
    """Owns the only writing connection of the hot path. Thread-safe `submit_*`; one worker thread.

    Why one thread and a queue: paho's network thread must never block on the database, and draining
    everything that has queued up into one transaction turns N fsyncs into one (group commit).
    """

    def __init__(
        self,
        engine: Engine,
        publish: Publish,
        *,
        auto_register_site: str = "demo",
        default_tz: str = "Asia/Shanghai",
        batch_max: int = 256,
        rate_limit_per_s: float = 0.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        queue_max: int = 20_000,
        signing_key: bytes | None = None,
        require_signed: bool = False,
        annul_window_s: float = 120.0,
    ) -> None:
        self.signing_key = signing_key
        self.require_signed = require_signed
        self.annul_window_s = annul_window_s
        self.engine = engine
        self.publish = publish
        self.auto_register_site = auto_register_site
        self.default_tz = default_tz
        self.batch_max = batch_max
        self.clock = clock
        # Rate limits run on a monotonic clock: an NTP step back must not lock a device out for an hour.
        self.monotonic = monotonic
        self.queue_max = queue_max
        self.limits = TokenBuckets(rate_limit_per_s)
        # Wrong PINs: 5 tries, then one a minute — a 4-digit PIN can't be walked through by a script.
        self.pin_limits = TokenBuckets(1 / 60, burst=5)
        # Never blocks a producer: paho's network thread must keep the keepalive going. MQTT scans are
        # bounded by the broker instead — it sends no more than its inflight window of unacknowledged
        # messages, and we acknowledge only after commit. Console requests are refused when it is deep.
        self.q: queue.Queue[Inbound | ConsoleRedeem | None] = queue.Queue()
        self.counters = Counters()
        self._places: dict[str, Place] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self._last_housekeeping = float("-inf")  # check-outs missed while down run at the first chance
        self._conn: Connection | None = None

    # -- hand-over points (any thread) ------------------------------------------------------------
    def submit_mqtt(self, topic: str, payload: bytes, ack: Callable[[], None] = _no_ack) -> None:
        self.q.put_nowait(Inbound(topic, payload, ack))

    def submit_console(self, req: ConsoleRedeem) -> Future[Verdict]:
        """Queue a console/REST request; raises Unavailable when the service is this far behind."""
        if self.q.qsize() >= self.queue_max:
            raise Unavailable("the redemption service is overloaded; retry with the same idempotency key")
        self.q.put_nowait(req)
        return req.future

    def forget_places(self) -> None:
        """Drop cached device→site lookups (after devices or sites change)."""
        self._places = {}

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="redemption-service", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish what is queued, then stop."""
        if self._thread is None:
            return
        self._stop.set()
        self.q.put(None)
        self._thread.join(timeout)
        self._thread = None

    def _housekeeping(self) -> None:
        mono = self.monotonic()
        if mono - self._last_housekeeping < 20:
            return
        self._last_housekeeping = mono
        try:
            # Each site resumes from its persisted cursor: a restart across the check-out time still runs it.
            run_checkouts(self.engine, None, self.clock())
        except Exception:
            log.exception("automatic check-out failed")

    def _run(self) -> None:
        while True:
            try:
                item = self.q.get(timeout=5)
            except queue.Empty:
                self._housekeeping()
                continue
            batch: list[Inbound | ConsoleRedeem] = []
            if item is not None:
                batch.append(item)
            while len(batch) < self.batch_max:
                try:
                    nxt = self.q.get_nowait()
                except queue.Empty:
                    break
                if nxt is not None:
                    batch.append(nxt)
            if batch:
                try:
                    self.process(batch)
                except Exception:  # the loop must survive anything one batch does
                    log.exception("batch of %d failed", len(batch))
            if self._stop.is_set() and self.q.empty():
                self._drop_writer()
                return
            self._housekeeping()

    # -- one batch ---------------------------------------------------------------------------------
    def process(self, batch: list[Inbound | ConsoleRedeem]) -> None:
        now = self.clock()
        pending: list[_Pending] = []
        statuses: list[tuple[str, dict[str, Any] | None, Callable[[], None]]] = []
        c = self.counters
        for item in batch:
            if isinstance(item, ConsoleRedeem):
                r = item.request
                # People's requests live in their own key space: no device id can reach them.
                req = replace(r, key=person_key(r.user or r.device, r.sid))
                place = Place(item.site_id, item.gate, _tz(item.tz_name))
                pending.append(_Pending(req, place, _resolver(item.future)))
                continue
            parts = split_topic(item.topic)
            if parts is None:
                c.dropped += 1
                item.ack()
                continue
            device, kind = parts
            if kind == "status":
                statuses.append((device, _parse_status(item.payload), item.ack))
                continue
            if kind != "scan":
                item.ack()
                continue
            c.scans += 1
            msg = parse_scan(item.payload)
            reply = self._replier(device)
            if isinstance(msg, Malformed):
                c.malformed += 1
                if msg.sid is None:
                    c.dropped += 1
                    log.warning("dropped unreadable scan from %s: %s", device, msg.why)
                else:
                    log.info("malformed scan %s/%s: %s", device, msg.sid, msg.why)
                    reply(render(msg.sid, system_denial("MALFORMED", msg.why)))
                item.ack()
                continue
            req = Request(
                device,
                msg.sid,
                msg.code or "",
                msg.qty,
                msg.dir,
                float(msg.at) or None,
                msg.op,
                msg.amt,
                msg.ref,
                None,
                msg.pin,
            )
            pending.append(_Pending(req, None, reply, item.ack))
        self._decide(pending, statuses, now)

    def _gate(self, p: _Pending, mono: float) -> None:
        """Transient checks for a request not decided before: a forged code, a device scanning too fast.

        Run once per request, and only after the stored verdicts were looked up: a retry of a
        committed scan always gets its stored verdict, whatever the signing key or rate says now.
        """
        if p.gated:
            return
        p.gated = True
        code = p.request.code
        if (
            p.request.op in ("redeem", "check")
            and code
            and forged(code, self.signing_key, self.require_signed)
        ):
            self.counters.forged += 1
            p.early = render(p.request.sid, system_denial("FORGED", "signature does not match"))
        elif p.place is None and not self.limits.allow(p.request.device, mono):
            self.counters.rate_limited += 1
            p.early = render(p.request.sid, system_denial("RATE_LIMITED", "too many scans per second"))

    def _decide(
        self,
        pending: list[_Pending],
        statuses: list[tuple[str, dict[str, Any] | None, Callable[[], None]]],
        now: float,
    ) -> None:
        if not pending and not statuses:
            return
        mono = self.monotonic()
        verdicts: list[Verdict] | None = None
        failed: Exception | None = None
        answer: list[_Pending] = []
        early: list[tuple[_Pending, Verdict]] = []
        for attempt in range(5):
            try:
                conn = self._writer()
                with conn.begin():
                    answer = []
                    early = []
                    items: list[tuple[Request, Place]] = []
                    placed: list[tuple[_Pending, Place]] = []
                    for p in pending:
                        place = p.place or self._place(conn, p.request.device, now)
                        if place is None:
                            early.append(
                                (
                                    p,
                                    render(p.request.sid, system_denial("UNKNOWN_DEVICE", "not registered")),
                                )
                            )
                            continue
                        placed.append((p, place))
                    keyed = [
                        p.request.idem for p, _ in placed if p.request.op not in ("check", "login", "logout")
                    ]
                    seen = stored_verdicts(conn, keyed)
                    for p, place in placed:
                        if p.request.op in ("login", "logout"):
                            early.append((p, self._sign(conn, p.request, place, now, mono)))
                            continue
                        if p.request.op == "check" or p.request.idem not in seen:
                            self._gate(p, mono)
                            if p.early is not None:
                                early.append((p, p.early))
                                continue
                        items.append((p.request, place))
                        answer.append(p)
                    decided = apply_batch(conn, items, now, self.annul_window_s, seen=seen)
                    self._apply_statuses(conn, statuses, now)
                # Committed: only now may anyone hear the outcome.
                verdicts = decided
                break
            except (LostRace, IntegrityError, OperationalError) as err:
                if isinstance(err, OperationalError):
                    self._drop_writer()
                self.counters.db_retries += 1
                log.warning("batch retry %d after %s: %s", attempt + 1, type(err).__name__, err)
                self._places = {}
                time.sleep(0.01 * (attempt + 1))
            except Exception as err:
                log.exception("batch of %d scans failed", len(pending))
                self._drop_writer()
                self._places = {}  # registrations made in the rolled-back transaction are gone too
                failed = err
                break
        if verdicts is None and failed is not None and len(pending) + len(statuses) > 1:
            # Not the database: one request of the batch is poison. Decide each on its own, so only
            # that one gets INTERNAL and everyone else their normal verdict.
            for p in pending:
                self._decide([p], [], now)
            for s in statuses:
                self._decide([], [s], now)
            return
        if verdicts is None:
            # Nothing was committed; devices keep the scan in their outbox and send it again.
            self.counters.internal_errors += len(pending)
            for p in pending:
                p.reply(render(p.request.sid, system_denial("INTERNAL", "gateway error, retry")))
                p.ack()
            for _, _, ack in statuses:
                ack()
            return
        for p, v in early:
            p.reply(v)
            p.ack()
        c = self.counters
        c.batches += 1
        c.max_batch = max(c.max_batch, len(answer))
        for p, v in zip(answer, verdicts, strict=True):
            if v.ok:
                c.redeemed += 1
            p.reply(v)
            p.ack()
        for _, _, ack in statuses:
            ack()
        self._notify(answer, verdicts, now)

    def _writer(self) -> Connection:
        if self._conn is None or self._conn.closed:
            self._conn = writer(self.engine.connect())
        return self._conn

    def _drop_writer(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                log.debug("closing a broken connection failed", exc_info=True)
            self._conn = None

    def _sign(self, conn: Any, req: Request, place: Place, now: float, mono: float) -> Verdict:
        """Sign a verifier in (by PIN) or out on a handheld; the device's later scans carry their name."""
        if req.op == "logout":
            sign_out(conn, req.device)
            self._places[req.device] = replace(place, user=None)
            return Verdict(req.sid, True, "OK", "SIGNED OUT", "", "signed out", "ok", None)
        if not self.pin_limits.allow(req.device, mono):
            return render(req.sid, system_denial("RATE_LIMITED", "too many PIN attempts; wait a minute"))
        user = sign_in(conn, req.device, place.site_id, req.pin or "")
        if user is None:
            return render(req.sid, system_denial("BAD_PIN", "no verifier has this PIN at this site"))
        self._places[req.device] = replace(place, user=user)
        return Verdict(
            req.sid,
            True,
            "OK",
            oled_text("HELLO " + user.upper()),
            "signed in",
            f"signed in as {user}",
            "ok",
            None,
        )

    def _place(self, conn: Any, device: str, now: float) -> Place | None:
        found = self._places.get(device)
        if found is None:
            found = load_place(conn, device, self.auto_register_site, now, self.default_tz)
            if found is not None:
                self._places[device] = found
        return found

    def _apply_statuses(
        self, conn: Any, statuses: list[tuple[str, dict[str, Any] | None, Callable[[], None]]], now: float
    ) -> None:
        for device, doc, _ in statuses:
            if doc is None:
                self.counters.dropped += 1
                continue
            self.counters.statuses += 1
            online = doc.get("state") == "online"
            values: dict[str, Any] = {"online": online, "last_seen": now}
            if online:
                values["status"] = doc
            res = conn.execute(update(Device).where(Device.device_id == device).values(**values))
            if (
                res.rowcount == 0
                and self.auto_register_site
                and DEVICE_RE.match(device)
                and not reserved_device(device)
            ):
                place = load_place(conn, device, self.auto_register_site, now, self.default_tz)
                if place is not None:
                    conn.execute(update(Device).where(Device.device_id == device).values(**values))

    def _replier(self, device: str) -> Callable[[Verdict], None]:
        topic = verdict_topic(device)

        def reply(v: Verdict) -> None:
            self.counters.verdicts += 1
            self.publish(topic, v.to_json())

        return reply

    def _notify(self, answer: list[_Pending], verdicts: list[Verdict], now: float) -> None:
        if not self.listeners:
            return
        for p, v in zip(answer, verdicts, strict=True):
            event = {"t": now, "device": p.request.device, "code": p.request.code, "verdict": v.to_dict()}
            for fn in list(self.listeners):
                try:
                    fn(event)
                except Exception:
                    log.exception("listener failed")


def _resolver(fut: Future[Verdict]) -> Callable[[Verdict], None]:
    def resolve(v: Verdict) -> None:
        if not fut.done():
            fut.set_result(v)

    return resolve


_TZ: dict[str, Any] = {}


def _tz(name: str) -> Any:
    from zoneinfo import ZoneInfo

    if name not in _TZ:
        _TZ[name] = ZoneInfo(name)
    return _TZ[name]


def _parse_status(payload: bytes) -> dict[str, Any] | None:
    if len(payload) > 1024:
        return None
    try:
        doc = json.loads(payload) if payload else {"v": 1, "state": "offline"}
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict) or doc.get("v") != 1 or doc.get("state") not in ("online", "offline"):
        return None
    return doc
