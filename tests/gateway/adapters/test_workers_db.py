# The workers' database plumbing on PostgreSQL: one elected leader, re-elected on death; cache notices.
from __future__ import annotations

import threading

from gateway.adapters.db import election
from gateway.adapters.db.election import Election
from gateway.adapters.db.engine import PG_LINK, make_engine
from gateway.adapters.db.notify import Notices
from tests.helpers import wait_for


def test_one_leader_and_another_once_it_is_gone(pg_url: str) -> None:
    election.RECHECK_S = 0.0  # type: ignore[misc]  # ask the database every time in this test
    a, b = Election(make_engine(pg_url)), Election(make_engine(pg_url))
    try:
        assert a.leader() and not b.leader()
        assert a.leader() and not b.leader()  # held, not taken twice
        a.close()  # its session ends, as a killed worker's does
        wait_for(b.leader, 10, "the other worker elected")
        assert not a.leader()  # back, it asks again and finds the lock taken
    finally:
        election.RECHECK_S = 2.0  # type: ignore[misc]
        a.close()
        b.close()


def test_sqlite_has_one_process_always_leading(tmp_path: object) -> None:
    assert Election(make_engine(f"sqlite:///{tmp_path}/x.db")).leader()


def test_a_notice_reaches_the_other_worker(pg_url: str) -> None:
    heard = threading.Event()
    calls: list[int] = []
    listener = Notices(make_engine(pg_url), lambda: (calls.append(1), heard.set()))
    listener.start()
    try:
        wait_for(lambda: calls, 10, "the listener connected (counts as a notice)")
        heard.clear()
        Notices(make_engine(pg_url), lambda: None).tell()
        assert heard.wait(10), "the notice never arrived"
    finally:
        listener.stop()


def test_the_notice_listener_has_the_link_settings(pg_url: str) -> None:
    """An idle LISTEN sends nothing: without keepalives a dead WAN link left the listener waiting on a
    dead connection for good, and no other worker's notice dropped this worker's caches again."""
    listener = Notices(make_engine(pg_url), lambda: None)
    with listener._connect() as conn:
        params = conn.info.get_parameters()
    assert {k: params.get(k) for k in PG_LINK} == {k: str(v) for k, v in PG_LINK.items()}
