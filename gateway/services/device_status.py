# Device status messages persisted: online/offline, last seen, the status document — many devices per write.
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from gateway.domain.heartbeats import Held
from gateway.domain.identifiers import DEVICE_RE
from gateway.services.group_commit import Counters
from gateway.services.places import PlaceCache
from gateway.services.ports.database import Tx
from gateway.services.ports.devices import Report
from gateway.services.ports.writer import Writer

log = logging.getLogger(__name__)

Ack = Callable[[], None]


def record_statuses(tx: Tx, held: Mapping[str, Held[Ack]], places: PlaceCache) -> None:
    """Write each device's coalesced status in the caller's transaction (one batched UPDATE).

    A status from a device not yet known registers it like a first scan would (when auto-registration
    is on), so the console lists a scanner as soon as it comes online.
    """
    reports: list[Report] = [(d, h.online, h.status, h.seen) for d, h in held.items()]
    unknown = tx.devices.report_many(reports)
    if not unknown:
        return
    new = [r for r in reports if r[0] in unknown and DEVICE_RE.match(r[0])]
    registered = set(places.register_many(tx, [r[0] for r in new], max(r[3] for r in new))) if new else set()
    if registered:
        tx.devices.report_many([r for r in new if r[0] in registered])


class StatusWriter:
    """Writes what the status buffer held in its own transaction on the hot path's connection, then
    acknowledges every message it stood for (used from the service thread only) — after the commit,
    or once the write has failed for good (below).

    Why acknowledge only after the commit: a gateway that crashes before it leaves the statuses with
    the broker, which delivers them again to the persistent session; a device's row never says less
    than the messages the broker was told are done with.
    """

    def __init__(self, writer: Writer, places: PlaceCache, counters: Counters) -> None:
        self.writer = writer
        self.places = places
        self.counters = counters

    def write(self, held: Mapping[str, Held[Ack]]) -> None:
        if not held:
            return
        w = self.writer
        failed = False
        for attempt in range(5):
            try:
                with w.batch() as tx:
                    record_statuses(tx, held, self.places)
                break
            except Exception as err:
                self.places.forget()  # registrations made in the rolled-back transaction are gone too
                if isinstance(err, w.retryable):
                    if isinstance(err, w.broken):
                        w.drop()
                    self.counters.db_retries += 1
                    log.warning("status write retry %d after %s: %s", attempt + 1, type(err).__name__, err)
                    time.sleep(0.01 * (attempt + 1))
                    continue
                w.drop()
                if len(held) > 1:
                    # Not the database: one device's status is poison. Write each on its own, so only
                    # that one is lost.
                    log.exception("status write of %d devices failed; writing them one by one", len(held))
                    for device, h in held.items():
                        self.write({device: h})
                    return
                log.exception("status write of %s failed", next(iter(held)))
                failed = True
                break
        else:
            failed = True
        if not failed:
            self.counters.statuses += sum(len(h.acks) for h in held.values())
        # Acknowledged even when the write failed (as a scan answered INTERNAL is): unacknowledged, each
        # would hold a slot of the broker's inflight window until the gateway reconnects, and the scans
        # share that window. What is lost is at most one heartbeat's document, or a device's
        # "offline" will while the database is down (its row then says online until its next status,
        # which the device sends at its next connect) — the status is state, not a ledger entry.
        for h in held.values():
            for ack in h.acks:
                ack()
