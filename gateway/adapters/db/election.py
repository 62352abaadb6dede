# One elected worker for the singletons (alarms, auto check-out, webhooks): a PostgreSQL advisory lock.
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy import Engine

log = logging.getLogger(__name__)

SINGLETONS_LOCK = 0x68787364  # "hxsd": held by the worker that runs the singletons
RECHECK_S = 2.0


class Election:
    """`leader()`: whether this process runs the singletons now.

    The lock is a session lock on a connection of its own: held while this process lives and its
    connection does, released by PostgreSQL when either dies (a kill -9 included), then taken by the
    next worker that asks (every RECHECK_S at most). On SQLite there is one process: always the leader.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.always = engine.dialect.name != "postgresql"
        self._conn: Any = None
        self._held = False
        self._checked = 0.0
        self._lock = threading.Lock()

    def leader(self) -> bool:
        if self.always:
            return True
        with self._lock:
            now = time.monotonic()
            if now - self._checked < RECHECK_S:
                return self._held
            self._checked = now
            try:
                if self._conn is None:
                    self._conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
                if self._held:
                    self._conn.exec_driver_sql("SELECT 1")  # still ours while our session lives
                else:
                    sql = f"SELECT pg_try_advisory_lock({SINGLETONS_LOCK})"
                    self._held = bool(self._conn.exec_driver_sql(sql).scalar())
                    if self._held:
                        log.info("elected to run the singletons (alarms, auto check-out, webhooks)")
            except Exception:
                log.warning("election connection lost; not the leader until it is back", exc_info=True)
                self._drop()
            return self._held

    def _drop(self) -> None:
        self._held = False
        if self._conn is not None:
            try:
                # invalidate, not close: a pooled connection would live on and keep holding the lock.
                self._conn.invalidate()
                self._conn.close()
            except Exception:
                log.debug("closing the election connection failed", exc_info=True)
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self._drop()
