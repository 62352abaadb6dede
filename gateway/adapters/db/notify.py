# Cache invalidation across workers: PostgreSQL LISTEN/NOTIFY tells the others to drop a cache.
from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy import Engine, text

from gateway.adapters.db.engine import link_args

log = logging.getLogger(__name__)

PLACES = "hx_places"  # devices or sites changed: drop the device -> site cache


class Notices:
    """One listening connection per worker; `tell()` reaches every worker's `on_notice` (ours too).

    Why NOTIFY and not a polled version column: no migration, no extra query per batch, and a change
    reaches the other workers within milliseconds. A notice sent while our listener reconnects would
    be missed, so every (re)connect counts as a notice: the cache starts over.
    """

    def __init__(self, engine: Engine, on_notice: Callable[[], None], channel: str = PLACES) -> None:
        self.engine = engine
        self.on_notice = on_notice
        self.channel = channel
        self.enabled = engine.dialect.name == "postgresql"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tell(self) -> None:
        if not self.enabled:
            return
        try:
            with self.engine.connect() as c:
                c.execute(text("SELECT pg_notify(:ch, '')"), {"ch": self.channel})
                c.commit()
        except Exception:
            log.exception("could not tell the other workers to drop their caches")

    def start(self) -> None:
        if self.enabled:
            self._thread = threading.Thread(target=self._listen, name="db-notices", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        """The listening connection, with the pool's link settings: an idle LISTEN sends nothing, so
        without keepalives a dead link would leave it waiting for notices that never come (and the
        caches never dropped) instead of failing and reconnecting."""
        url = self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        return psycopg.connect(make_conninfo(url, **link_args(self.engine.url)), autocommit=True)

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                with self._connect() as conn:
                    conn.execute(f"LISTEN {self.channel}")
                    self.on_notice()  # anything sent while we were not listening
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0):
                            self.on_notice()
            except Exception:
                log.warning("listening for other workers' cache notices failed; retrying", exc_info=True)
                self._stop.wait(2)
