# The ledger under concurrent writers on SQLite and PostgreSQL: conditional updates never over-redeem.
from __future__ import annotations

import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, insert, inspect, select
from sqlalchemy.exc import IntegrityError, OperationalError

from gateway.adapters.db.engine import make_engine, migrate, writer
from gateway.adapters.db.models import Base, Order, Redemption
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.adapters.db.repositories.ledger import SqlLedger
from gateway.adapters.mqtt.oled import render
from gateway.domain.requests import Place, Request
from gateway.services.ledger import apply_batch
from gateway.services.ledger_store import Contended
from gateway.services.orders import OrderIn, create_orders

TZ = ZoneInfo("UTC")
PLACE = Place(None, "Gate 1", TZ)


def engine_for(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Engine:
    url = f"sqlite:///{tmp_path / 'l.db'}" if kind == "sqlite" else request.getfixturevalue("pg_url")
    e = make_engine(url)
    migrate(e)
    return e


def redeem_with_retry(e: Engine, req: Request) -> bool:
    for _ in range(50):
        try:
            with e.connect() as c:
                c = writer(c)
                with c.begin():
                    v = apply_batch(SqlLedger(c), [(req, PLACE)], time.time(), render=render)[0]
            return v.ok
        except (Contended, IntegrityError, OperationalError):
            time.sleep(0.005)
    raise AssertionError("never got through")


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_concurrent_writers_never_over_redeem(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    e = engine_for(kind, tmp_path, request)
    create_orders(SqlDatabase(e), [OrderIn(code="POOL", title="Pool", quantity=25)])
    results: list[bool] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        for i in range(10):
            ok = redeem_with_retry(e, Request(f"dev-{n}", f"s-{i}", "POOL", 1, "in", None))
            with lock:
                results.append(ok)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 80 and sum(results) == 25
    with e.connect() as c:
        assert c.execute(select(Order.used).where(Order.code == "POOL")).scalar_one() == 25
        rows = c.execute(select(Redemption.ok)).scalars().all()
    assert len(rows) == 80 and sum(rows) == 25
    e.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_batch_dedupes_within_and_across_batches(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    e = engine_for(kind, tmp_path, request)
    create_orders(SqlDatabase(e), [OrderIn(code="B", title="B", quantity=3)])
    r1 = Request("d", "1", "B", 1, "in", 5.0)
    r2 = Request("d", "2", "B", 2, "in", 5.0)
    r3 = Request("d", "3", "B", 1, "in", 5.0)
    with e.connect() as c, writer(c).begin():
        out = apply_batch(
            SqlLedger(c), [(r1, PLACE), (r1, PLACE), (r2, PLACE), (r3, PLACE)], 100.0, render=render
        )
    assert [(v.sid, v.reason, v.left) for v in out] == [
        ("1", "OK", 2),
        ("1", "OK", 2),
        ("2", "OK", 0),
        ("3", "ALREADY_USED", 0),
    ]
    with e.connect() as c, writer(c).begin():
        again = apply_batch(SqlLedger(c), [(r3, PLACE), (r2, PLACE)], 200.0, render=render)
    assert again == [out[3], out[2]]
    with e.connect() as c:
        assert c.execute(select(Order.used)).scalar_one() == 3
        assert len(c.execute(select(Redemption.id)).all()) == 3
    e.dispose()


def test_migrations_match_the_models(tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    e = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    migrate(e)
    with e.connect() as c:
        diff = compare_metadata(MigrationContext.configure(c), Base.metadata)
    assert diff == []
    assert set(inspect(e).get_table_names()) >= {
        "sites",
        "orders",
        "devices",
        "redemptions",
        "alembic_version",
    }


def test_sqlite_is_durable_mode(tmp_path: Path) -> None:
    e = make_engine(f"sqlite:///{tmp_path / 'd.db'}")
    with e.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_one_order_row_mapping_on_both_paths(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The driver-level read (by code) and the Core read (by short code, by id) give the same OrderView."""
    e = engine_for(kind, tmp_path, request)
    with e.begin() as c:
        c.execute(
            insert(Order).values(
                code="MAP",
                title="Map",
                quantity=3,
                created_at=0.0,
                short_code="ABCDE23456",
                rules={"per_day": 2},
                inside=1,
            )
        )
    with e.connect() as c:
        by_code = SqlLedger(c).orders({"MAP"})["MAP"]
        by_short = SqlLedger(c).orders({"ABCDE-23456"})["ABCDE-23456"]
        by_id = SqlLedger(c).orders(set(), {by_code.id})["MAP"]
    assert by_code == by_short == by_id
    assert by_code.rules == {"per_day": 2} and by_code.inside == 1 and by_code.title == "Map"


def test_short_code_typed_with_spaces_finds_its_order(tmp_path: Path) -> None:
    """One normaliser: dashes, spaces and lower case do not matter, at the gate as in the console's search."""
    e = make_engine(f"sqlite:///{tmp_path / 'l.db'}")
    migrate(e)
    with e.begin() as c:
        c.execute(
            insert(Order).values(code="SP", title="Sp", quantity=1, created_at=0.0, short_code="ABCDE23456")
        )
    with e.connect() as c:
        found = SqlLedger(c).orders({"abcde 23456", "ABCDE-23456"})
    assert {k: o.code for k, o in found.items()} == {"abcde 23456": "SP", "ABCDE-23456": "SP"}
