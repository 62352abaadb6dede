# Outbound webhooks: a background thread follows the redemption ledger by id and POSTs signed events.
from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import Engine, func, insert, select, update

from gateway.adapters.db.engine import writer
from gateway.adapters.db.models import Order, Redemption, Site, WebhookCursor
from gateway.adapters.webhooks.policy import backoff, deliverable, event_of
from gateway.adapters.webhooks.signing import sign
from gateway.config import Target, WebhookSettings

log = logging.getLogger(__name__)
BATCH = 100  # events per round and receiver: also the most a crash can make us send twice

# Why poll the ledger instead of an outbox written with each redemption: the redemption transaction is
# the service loop's hot path, and the ledger already is a durable, ordered log of every decision. A
# cursor per receiver (stored after each delivery) makes delivery at-least-once and in order; a receiver
# that fails holds back only its own events, retried with exponential back-off, never dropped.


def _finite(v: Any) -> Any:
    """`v` with every NaN or infinity replaced by null (JSON has no such numbers)."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _finite(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_finite(x) for x in v]
    return v


def encode(event: dict[str, Any]) -> bytes:
    """The event as strict JSON. Python's json writes `Infinity`/`NaN` by default, which strict receivers
    refuse, and a refused event is retried for ever with every later one waiting behind it. The gateway
    refuses such numbers where they come in; should one still reach a ledger row, that one event is logged
    and sent with the number as null, and delivery goes on."""
    try:
        return json.dumps(event, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except ValueError:
        log.error("webhook event %s has a number that is not finite; sent as null", event.get("id"))
        clean = _finite(event)
        return json.dumps(clean, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


@dataclass
class _State:
    target: Target
    key: str
    last_id: int
    delivered: int
    failures: int
    last_error: str | None
    next_at: float = 0.0


def target_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


_COLS = (
    Redemption.id,
    Redemption.server_time,
    Redemption.op,
    Redemption.ok,
    Redemption.reason,
    Redemption.ref_id,
    Redemption.code,
    Redemption.qty,
    Redemption.direction,
    Redemption.gate,
    Redemption.device,
    Redemption.scan_id,
    Redemption.user,
    Redemption.device_time,
    Redemption.verdict,
    Site.slug.label("site"),
    Order.external_ref,
)


class Deliverer:
    def __init__(
        self,
        engine: Engine,
        targets: list[Target],
        settings: WebhookSettings,
        leader: Callable[[], bool] = lambda: True,
    ) -> None:
        self.engine = engine
        self.leader = leader  # one elected worker of several delivers (docs/scaling.md)
        self.settings = settings
        self.states = [self._load(t) for t in targets]
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._http = httpx.Client(timeout=settings.webhook_timeout_s, follow_redirects=False)

    def _load(self, t: Target) -> _State:
        key = target_key(t.url)
        with self.engine.connect() as c, writer(c).begin():
            row = c.execute(
                select(
                    WebhookCursor.last_id,
                    WebhookCursor.delivered,
                    WebhookCursor.failures,
                    WebhookCursor.last_error,
                ).where(WebhookCursor.target == key)
            ).first()
            if row is None:
                # A new receiver starts at the present: it gets events from now on, not the whole history.
                top = c.execute(select(func.max(Redemption.id))).scalar() or 0
                c.execute(
                    insert(WebhookCursor).values(
                        target=key, url=t.url, last_id=top, delivered=0, failures=0, updated_at=time.time()
                    )
                )
                return _State(t, key, top, 0, 0, None)
            return _State(t, key, row.last_id, row.delivered, row.failures, row.last_error)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="webhook-out", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.settings.webhook_timeout_s + 5)
        self._http.close()

    def _run(self) -> None:
        leading = True  # the cursors were just loaded
        while not self._stop.is_set():
            try:
                if not self.leader():
                    leading = False
                elif not leading:
                    # Elected after another worker delivered: go on from its stored cursors, not ours.
                    self.states = [self._load(st.target) for st in self.states]
                    leading = True
                if leading:
                    self.run_once(time.time())
            except Exception:  # logged, never fatal: the next round tries again from the stored cursor
                log.exception("webhook delivery round failed")
            self._stop.wait(self.settings.webhook_poll_s)

    def run_once(self, now: float) -> None:
        for st in self.states:
            if now >= st.next_at and not self._stop.is_set():
                self._advance(st, now)

    def _rows(self, after: int) -> list[Any]:
        q = (
            select(*_COLS)
            .select_from(Redemption)
            .outerjoin(Site, Site.id == Redemption.site_id)
            .outerjoin(Order, Order.id == Redemption.order_id)
            .where(Redemption.id > after)
            .order_by(Redemption.id)
            .limit(BATCH)
        )
        with self.engine.connect() as c:
            return list(c.execute(q).all())

    def _advance(self, st: _State, now: float) -> None:
        rows = self._rows(st.last_id)
        n = deliverable(st.last_id, rows, now)
        moved = False
        try:
            for r in rows[:n]:
                if self._stop.is_set():
                    return
                event = event_of(r, self.settings.webhook_denials)
                if event is not None:
                    error = self._post(st.target, event)
                    if error is not None:
                        self._failed(st, event["id"], error)
                        return
                    st.delivered += 1
                st.last_id = r.id
                st.failures, st.last_error = 0, None
                moved = True
        finally:
            # One cursor write per round, not per event: the ledger's writers share SQLite's single write
            # lock, and a crash costs at most one round of events sent again (receivers dedupe by id).
            if moved or st.failures:
                self._save(st)

    def _failed(self, st: _State, event_id: str, error: str) -> None:
        st.failures += 1
        st.last_error = error[:300]
        st.next_at = time.time() + backoff(st.failures, self.settings.webhook_retry_max_s)
        log.warning("webhook %s: %s failed (%s), attempt %d", st.target.url, event_id, error, st.failures)

    def _post(self, t: Target, event: dict[str, Any]) -> str | None:
        """None when the receiver took the event (any 2xx), else why not."""
        body = encode(event)
        stamp = str(int(time.time()))
        headers = {
            "content-type": "application/json",
            "x-hexiao-timestamp": stamp,
            "x-hexiao-signature": sign(t.secret, stamp, body),
            "x-hexiao-event": event["type"],
            "user-agent": "hexiao-gateway",
        }
        try:
            resp = self._http.post(t.url, content=body, headers=headers)
        except httpx.HTTPError as err:
            return f"{type(err).__name__}: {err}"
        if 200 <= resp.status_code < 300:
            return None
        return f"HTTP {resp.status_code}"

    def _save(self, st: _State) -> None:
        with self.engine.connect() as c, writer(c).begin():
            c.execute(
                update(WebhookCursor)
                .where(WebhookCursor.target == st.key)
                .values(
                    last_id=st.last_id,
                    delivered=st.delivered,
                    failures=st.failures,
                    last_error=st.last_error,
                    updated_at=time.time(),
                )
            )

    def status(self) -> list[dict[str, Any]]:
        out = []
        with self.engine.connect() as c:
            for st in self.states:
                pending = c.execute(select(func.count()).where(Redemption.id > st.last_id)).scalar_one()
                out.append(
                    {
                        "url": st.target.url,
                        "last_id": st.last_id,
                        "delivered": st.delivered,
                        "failures": st.failures,
                        "last_error": st.last_error,
                        "next_attempt_at": st.next_at or None,
                        "rows_behind": pending,
                    }
                )
        return out
