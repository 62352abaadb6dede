# The service loop: drains scans into one transaction (group commit), commits, then publishes verdicts.
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any
from zoneinfo import ZoneInfo

from gateway.domain.decisions import system_denial
from gateway.domain.errors import Unavailable
from gateway.domain.heartbeats import StatusBuffer
from gateway.domain.ratelimit import InOrderBuckets, TokenBuckets
from gateway.domain.requests import Place, Request, person_key
from gateway.domain.verdict import Verdict
from gateway.services.auto_checkout import run_checkouts
from gateway.services.device_status import Ack, StatusWriter
from gateway.services.group_commit import Counters, Gate, GroupCommit, Pending
from gateway.services.messages import BadScan, Ignored, Inbound, ScanIn, StatusIn, Transport, no_ack
from gateway.services.places import PlaceCache
from gateway.services.ports.database import Database
from gateway.services.ports.writer import Writer

__all__ = ["ConsoleRedeem", "Counters", "Inbound", "RedemptionService"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ConsoleRedeem:
    """A redemption typed in the console or sent over REST; answered through `future`."""

    request: Request
    site_id: int | None
    gate: str
    tz_name: str
    future: Future[Verdict] = field(default_factory=Future)
    received: float = 0.0  # monotonic time it was queued (set by submit_console)


class RedemptionService:
    """Owns the only writing connection of the hot path. Thread-safe `submit_*`; one worker thread.

    Why one thread and a queue: paho's network thread must never block on the database, and draining
    everything that has queued up into one transaction turns N fsyncs into one (group commit).
    """

    def __init__(
        self,
        db: Database,
        writer: Writer,
        transport: Transport,
        *,
        auto_register_site: str = "demo",
        auto_register_per_min: float = 0.0,
        default_tz: str = "Asia/Shanghai",
        batch_max: int = 256,
        rate_limit_per_s: float = 0.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        queue_max: int = 20_000,
        signing_key: bytes | None = None,
        require_signed: bool = False,
        annul_window_s: float = 120.0,
        pin_key: bytes = b"",
        status_interval_s: float = 0.25,
        status_max_wait_s: float = 2.0,
        status_max_held: int = 256,
    ) -> None:
        # Whether this process runs the site check-outs: one elected worker of several (bootstrap).
        self.leader: Callable[[], bool] = lambda: True
        # How the other workers hear that devices or sites changed (bootstrap: adapters/db/notify.py).
        self.tell_workers: Callable[[], None] = lambda: None
        self.db = db
        self.transport = transport
        self.batch_max = batch_max
        self.clock = clock
        # Rate limits run on a monotonic clock: an NTP step back must not lock a device out for an hour.
        self.monotonic = monotonic
        self.queue_max = queue_max
        # Never blocks a producer: paho's network thread must keep the keepalive going. MQTT scans are
        # bounded by the broker instead — it sends no more than its inflight window of unacknowledged
        # messages, and we acknowledge only after commit. Console requests are refused when it is deep.
        self.q: queue.Queue[Inbound | ConsoleRedeem | None] = queue.Queue()
        self.counters = Counters()
        self._places = PlaceCache(auto_register_site, default_tz, auto_register_per_min)
        # Wrong PINs: 5 tries, then one a minute — a 4-digit PIN can't be walked through by a script.
        gate = Gate(
            signing_key,
            require_signed,
            InOrderBuckets(rate_limit_per_s),
            TokenBuckets(1 / 60, burst=5),
            pin_key,
        )
        self._commit = GroupCommit(
            writer, self._places, gate, self.counters, annul_window_s, monotonic, transport.render
        )
        # Device statuses wait here, the latest per device, and are written in their own transactions
        # when no scan is queued (domain/heartbeats.py says when): a heartbeat is not urgent, a scan is.
        self._statuses: StatusBuffer[Ack] = StatusBuffer(
            status_interval_s, status_max_wait_s, status_max_held
        )
        self._status_writer = StatusWriter(writer, self._places, self.counters)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._last_housekeeping = float("-inf")  # check-outs missed while down run at the first chance

    @property
    def listeners(self) -> list[Callable[[dict[str, Any]], None]]:
        """Called on the service thread with each decided request, after its commit (must not block)."""
        return self._commit.listeners

    # -- hand-over points (any thread) ------------------------------------------------------------
    def submit_mqtt(self, topic: str, payload: bytes, ack: Callable[[], None] = no_ack) -> None:
        self.q.put_nowait(Inbound(topic, payload, ack, self.monotonic()))

    def submit_console(self, req: ConsoleRedeem) -> Future[Verdict]:
        """Queue a console/REST request; raises Unavailable when the service is this far behind."""
        if self.q.qsize() >= self.queue_max:
            raise Unavailable("the redemption service is overloaded; retry with the same idempotency key")
        req.received = self.monotonic()
        self.q.put_nowait(req)
        return req.future

    def forget_places(self) -> None:
        """Drop cached device→site lookups (after devices or sites change), here and in other workers."""
        self._places.forget()
        self.tell_workers()

    def forget_places_here(self) -> None:
        """Another worker changed devices or sites: drop our cache only (no echo)."""
        self._places.forget()

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
        if not self.leader():
            return  # another worker is elected to run the check-outs (docs/scaling.md)
        try:
            # Each site resumes from its persisted cursor: a restart across the check-out time still runs it.
            run_checkouts(self.db, None, self.clock())
        except Exception:
            log.exception("automatic check-out failed")

    def write_statuses(self, idle: bool = True, force: bool = False) -> None:
        """Write the held device statuses when they are due (`force`: now, whatever is queued)."""
        if force or self._statuses.due(self.monotonic(), idle):
            try:
                self._status_writer.write(self._statuses.take())
            except Exception:  # the loop must survive anything one write does
                log.exception("status write failed")

    def _run(self) -> None:
        while True:
            wait = self._statuses.wait_s(self.monotonic())
            try:
                item = self.q.get(timeout=5 if wait is None else min(5, wait))
            except queue.Empty:
                self.write_statuses(idle=True)
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
            # Only once the scans that queued meanwhile are decided (unless statuses waited too long).
            self.write_statuses(idle=self.q.empty())
            if self._stop.is_set() and self.q.empty():
                self.write_statuses(force=True)
                self._commit.drop_writer()
                return
            self._housekeeping()

    # -- one batch ---------------------------------------------------------------------------------
    def process(self, batch: list[Inbound | ConsoleRedeem]) -> None:
        """Decide the batch's scans and requests; its statuses join the buffer (`write_statuses`)."""
        now = self.clock()
        pending: list[Pending] = []
        c = self.counters
        for item in batch:
            if isinstance(item, ConsoleRedeem):
                r = item.request
                # People's requests live in their own key space: no device id can reach them.
                req = r if r.key else replace(r, key=person_key(r.user or r.device, r.sid))
                place = Place(item.site_id, item.gate, _tz(item.tz_name))
                pending.append(Pending(req, place, self._resolver(item.future, item.received)))
                continue
            msg = self.transport.read(item.topic, item.payload)
            if isinstance(msg, StatusIn):
                if msg.doc is None:
                    # Nothing to write, so nothing to wait for; the device's earlier status still stands.
                    c.dropped += 1
                    item.ack()
                else:
                    self._statuses.add(msg.device, msg.doc, item.ack, self.monotonic(), now)
                continue
            if isinstance(msg, Ignored):
                if msg.unreadable:
                    c.dropped += 1
                item.ack()
                continue
            c.scans += 1
            reply = self._replier(msg.device, item.received)
            if isinstance(msg, BadScan):
                c.malformed += 1
                if msg.sid is None:
                    c.dropped += 1
                    log.warning("dropped unreadable scan from %s: %s", msg.device, msg.why)
                else:
                    log.info("malformed scan %s/%s: %s", msg.device, msg.sid, msg.why)
                    reply(self.transport.render(msg.sid, system_denial("MALFORMED", msg.why)))
                item.ack()
                continue
            assert isinstance(msg, ScanIn)
            pending.append(Pending(msg.request, None, reply, item.ack))
        self._commit.decide(pending, now)

    def _replier(self, device: str, received: float) -> Callable[[Verdict], None]:
        answer = self.transport.answer
        measured = self.counters.measures

        def reply(v: Verdict) -> None:
            self.counters.verdicts += 1
            answer(device, v)
            measured.verdicts["mqtt", v.reason] += 1
            measured.latency.observe(self.monotonic() - received)

        return reply

    def _resolver(self, fut: Future[Verdict], received: float) -> Callable[[Verdict], None]:
        measured = self.counters.measures

        def resolve(v: Verdict) -> None:
            if not fut.done():
                fut.set_result(v)
                measured.verdicts["http", v.reason] += 1
                measured.latency.observe(self.monotonic() - received)

        return resolve


_TZ: dict[str, ZoneInfo] = {}


def _tz(name: str) -> ZoneInfo:
    if name not in _TZ:
        _TZ[name] = ZoneInfo(name)
    return _TZ[name]
