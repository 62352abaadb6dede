# The hot path's writing connection over SQLAlchemy: implements services.ports.writer.Writer.
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from gateway.adapters.db.engine import writer
from gateway.adapters.db.repositories.database import SqlTx

log = logging.getLogger(__name__)


class SqlWriter:
    retryable: tuple[type[Exception], ...] = (IntegrityError, OperationalError)
    broken: tuple[type[Exception], ...] = (OperationalError,)

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None
        self._tx: SqlTx | None = None

    @contextmanager
    def batch(self) -> Iterator[SqlTx]:
        if self._conn is None or self._conn.closed or self._tx is None:
            self._conn = writer(self.engine.connect())
            self._tx = SqlTx(self._conn)  # its repositories serve every batch on this connection
        with self._conn.begin():
            yield self._tx

    def drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                log.debug("closing a broken connection failed", exc_info=True)
        self._conn = None
        self._tx = None
