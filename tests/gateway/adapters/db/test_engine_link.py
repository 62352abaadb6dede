# PostgreSQL over a dead or silent link: a connect gives up instead of blocking the gateway for good.
from __future__ import annotations

import socket
import threading

from sqlalchemy.exc import OperationalError

from gateway.adapters.db.engine import PG_LINK, make_engine


def test_a_server_that_accepts_and_never_answers_fails_the_connect() -> None:
    """A PostgreSQL behind a broken WAN link looks like this: TCP is accepted, nothing comes back. The
    connect must end with an error (5 s, `connect_timeout`), not wait for as long as TCP does."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    port = silent.getsockname()[1]
    engine = make_engine(f"postgresql+psycopg://hexiao@127.0.0.1:{port}/hexiao")
    outcome: list[BaseException] = []

    def connect() -> None:
        try:
            engine.connect().close()
        except BaseException as err:
            outcome.append(err)

    t = threading.Thread(target=connect, daemon=True)
    t.start()
    t.join(120)  # 24x the timeout: only a missing timeout makes it wait this long
    silent.close()
    engine.dispose()
    assert not t.is_alive(), "the connect never gave up"
    assert len(outcome) == 1 and isinstance(outcome[0], OperationalError), outcome


def test_the_link_settings_reach_the_connection_and_the_url_overrides_them() -> None:
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres?connect_timeout=9")
    with engine.connect() as c:
        params = c.connection.dbapi_connection.info.get_parameters()  # type: ignore[union-attr]
    engine.dispose()
    assert params["connect_timeout"] == "9"  # from the URL
    assert {k: params[k] for k in PG_LINK if k != "connect_timeout"} == {
        k: str(v) for k, v in PG_LINK.items() if k != "connect_timeout"
    }
