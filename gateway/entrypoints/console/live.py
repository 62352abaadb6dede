# Live feed: verdict events from the service thread, handed to the asyncio loop, enriched, fanned out (SSE).
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select

from gateway.adapters.db.models import Order, Redemption, Site
from gateway.domain.decisions import unknown_code
from gateway.domain.roles import Person
from gateway.services.ledger import idem_key
from gateway.services.messages import Render

log = logging.getLogger(__name__)

_STOP: dict[str, Any] = {}  # sentinel that ends a stream
STREAM_SECONDS = 15.0  # each SSE response ends after this; the browser reconnects with Last-Event-ID
PING_SECONDS = 5.0


@dataclass(eq=False)
class Subscriber:
    person: Person
    device: str | None
    first_id: int = 0
    q: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(maxsize=500))
    dropped: int = 0


class LiveHub:
    """Why the hand-over looks like this: listeners run on the service thread, which must never block
    or touch the event loop directly. They append to a bounded deque and wake the loop at most once
    per batch (call_soon_threadsafe), so a burst of thousands of scans costs one wake-up. When nobody
    watches, a listener call is a single length check.
    """

    def __init__(self, engine: Engine, loop: asyncio.AbstractEventLoop, render: Render | None = None) -> None:
        self.engine = engine
        self.render = render  # how an unknown code's verdict reads, for typed codes of hidden orders
        self.loop = loop
        self.subs: set[Subscriber] = set()
        self._inbox: deque[dict[str, Any]] = deque(maxlen=5000)  # overflow: oldest events are dropped
        self._lock = threading.Lock()
        self._armed = False
        self._wake = asyncio.Event()
        self.recent: deque[dict[str, Any]] = deque(maxlen=300)  # replay buffer for Last-Event-ID
        self.seq = 0
        self._task: asyncio.Task[None] | None = None
        self.closing = False

    # -- service thread side ---------------------------------------------------------------------
    def listener(self, event: dict[str, Any]) -> None:
        if not self.subs:
            return
        with self._lock:
            self._inbox.append(event)
            if self._armed:
                return
            self._armed = True
        self.loop.call_soon_threadsafe(self._wake.set)

    # -- loop side ---------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = self.loop.create_task(self._run(), name="live-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            with self._lock:
                batch = list(self._inbox)
                self._inbox.clear()
                self._armed = False
            if not batch:
                continue
            try:
                enriched = await asyncio.to_thread(self._enrich, batch)
            except Exception:  # a failed lookup must not stop the feed: send what we know
                log.exception("live enrich failed")
                enriched = [_flat(e, {}) for e in batch]
            for e in enriched:
                self.publish(e)

    def publish(self, e: dict[str, Any]) -> None:
        self.seq += 1
        e["id"] = self.seq
        self.recent.append(e)
        for s in list(self.subs):
            if _visible(s, e):
                try:
                    s.q.put_nowait(self._as_seen(s, e))
                except asyncio.QueueFull:
                    s.dropped += 1  # a stalled browser loses events rather than holding memory

    def _as_seen(self, s: Subscriber, e: dict[str, Any]) -> dict[str, Any]:
        """A typed code of an order the watcher may not see reads as an unknown code (as it did for the
        person who typed it): WRONG_SITE would tell the watcher that the code exists elsewhere."""
        if "order_site" not in e:
            return e
        shown = {k: v for k, v in e.items() if k != "order_site"}  # never sent as such
        if s.person.sees_order(e["order_site"]) or self.render is None:
            return shown
        v = self.render(str(e.get("sid") or ""), unknown_code()).to_dict()
        return {
            **shown,
            **{k: v.get(k) for k in ("ok", "reason", "l1", "l2", "detail", "sound", "left")},
            "title": None,
        }

    def _enrich(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        keys = {_key(e) for e in batch}
        typed_wrong = {
            e["code"] for e in batch if e.get("typed") and e["verdict"].get("reason") == "WRONG_SITE"
        }
        site_ids = {e["site_id"] for e in batch if e.get("site_id") is not None}
        with self.engine.connect() as c:
            sites = {
                s.id: s
                for s in c.execute(select(Site.id, Site.slug, Site.timezone).where(Site.id.in_(site_ids)))
            }
            owners = (
                dict(
                    c.execute(
                        select(Order.code, Site.slug)
                        .outerjoin(Site, Site.id == Order.site_id)
                        .where(Order.code.in_(typed_wrong))
                    ).all()
                )
                if typed_wrong
                else {}
            )
            rows = c.execute(
                select(
                    Redemption.idem_key,
                    Site.slug,
                    Site.timezone,
                    Redemption.gate,
                    Redemption.qty,
                    Redemption.direction,
                    Order.title,
                    Redemption.op,
                    Redemption.user,
                )
                .select_from(Redemption)
                .outerjoin(Site, Site.id == Redemption.site_id)
                .outerjoin(Order, Order.id == Redemption.order_id)
                .where(Redemption.idem_key.in_(keys))
            ).all()
        extra = {r.idem_key: r for r in rows}
        out = []
        for e in batch:
            r = extra.get(_key(e))
            asked = sites.get(e.get("site_id"))
            info: dict[str, Any] = {"site": asked.slug, "tz": asked.timezone} if asked is not None else {}
            info.update(
                {
                    "site": r.slug,
                    "tz": r.timezone,  # the feed shows the time in the zone of the scan's site
                    "gate": r.gate,
                    "qty": r.qty,
                    "dir": r.direction,
                    "title": r.title,
                    "op": r.op,
                    "user": r.user,
                }
                if r is not None
                else {}
            )
            if asked is not None:
                info["site"] = asked.slug  # a typed request is where it was asked, whatever the row says
            if e["code"] in owners and e.get("typed") and e["verdict"].get("reason") == "WRONG_SITE":
                info["order_site"] = owners[e["code"]]  # used by _as_seen, never sent as such
            out.append(_flat(e, info))
        return out

    def close_streams(self) -> None:
        """End every open stream now (any thread, signal handlers included): the server is stopping and
        must not wait for browsers to hang up."""
        self.closing = True

        def stop_all() -> None:
            for s in list(self.subs):
                with contextlib.suppress(asyncio.QueueFull):
                    s.q.put_nowait(_STOP)

        self.loop.call_soon_threadsafe(stop_all)

    def subscribe(self, person: Person, device: str | None, last_id: int | None) -> Subscriber:
        s = Subscriber(person, device, last_id if last_id is not None else self.seq)
        if last_id is not None:
            for e in self.recent:
                if e["id"] > last_id and _visible(s, e):
                    s.q.put_nowait(self._as_seen(s, e))
        self.subs.add(s)
        return s

    async def stream(self, s: Subscriber) -> AsyncIterator[str]:
        try:
            yield f"retry: 1000\nid: {s.first_id}\n\n"
            deadline = self.loop.time() + STREAM_SECONDS
            while (left := deadline - self.loop.time()) > 0:
                try:
                    e = await asyncio.wait_for(s.q.get(), min(PING_SECONDS, left))
                except TimeoutError:
                    if self.closing:
                        return
                    yield ": ping\n\n"
                    continue
                if e is _STOP:
                    return
                yield f"id: {e['id']}\ndata: {json.dumps(e, ensure_ascii=False)}\n\n"
        finally:
            self.subs.discard(s)


def _flat(e: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    v = e["verdict"]
    out = {
        "t": e["t"],
        "device": e["device"],
        "code": e["code"],
        "sid": v.get("sid"),
        "ok": v.get("ok"),
        "reason": v.get("reason"),
        "l1": v.get("l1"),
        "l2": v.get("l2"),
        "detail": v.get("detail"),
        "sound": v.get("sound"),
        "left": v.get("left"),
        "site": None,
        "tz": None,
        "gate": None,
        "qty": 1,
        "dir": "in",
        "title": None,
        "op": "redeem",
        "user": None,
        "typed": bool(e.get("typed")),
    }
    out.update(info)
    return out


def _key(e: dict[str, Any]) -> str:
    return str(e.get("key") or idem_key(e["device"], e["verdict"]["sid"]))


def _visible(s: Subscriber, e: dict[str, Any]) -> bool:
    if s.device is not None and e["device"] != s.device:
        return False
    if e.get("site") is None and e.get("typed"):
        return s.person.all_sites  # a typed code whose site is unknown is shown to all-sites people only
    return s.person.sees_site(e.get("site"))
