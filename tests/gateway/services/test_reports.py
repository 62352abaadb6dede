# Reports on a hand-built ledger (exact numbers), settlement dates, and the REST/CSV edge with roles.
from __future__ import annotations

import csv
import io
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, insert, select, update

from gateway.adapters.db.engine import make_engine, migrate, writer
from gateway.adapters.db.models import Order, Product, Redemption, Site
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.adapters.db.repositories.ledger import SqlLedger
from gateway.adapters.mqtt.oled import render
from gateway.domain.errors import ValidationFailed
from gateway.entrypoints.http.routes.reports import count_columns, parse_when, to_csv
from gateway.services import adjustments as adjust
from gateway.services import reports, settlement
from gateway.services.accounts import create_user, issue_api_token
from gateway.services.ledger import Place, Request, apply_batch, idem_key
from gateway.services.orders import OrderIn, SiteIn, create_orders, create_site
from tests.conftest import GatewayProc

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC).timestamp()  # 18:00 in Shanghai, 05:00 in New York
DAY = 86400.0


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Engine]:
    url = (
        f"sqlite:///{tmp_path / 'rep.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    )
    e = make_engine(url)
    migrate(e)
    create_site(SqlDatabase(e), SiteIn(slug="sh", name="Shanghai", timezone="Asia/Shanghai"))
    create_site(SqlDatabase(e), SiteIn(slug="ny", name="New York", timezone="America/New_York"))
    yield e
    e.dispose()


def place(e: Engine, slug: str, gate: str) -> Place:
    with e.connect() as c:
        row = c.execute(select(Site.id, Site.timezone).where(Site.slug == slug)).one()
    return Place(row.id, gate, ZoneInfo(row.timezone))


def scan(
    e: Engine, at: float, where: Place, device: str, sid: str, code: str, qty: int = 1, **kw: Any
) -> bool:
    req = Request(
        device,
        sid,
        code,
        qty,
        "in",
        None,
        kw.get("op", "redeem"),
        kw.get("amt"),
        kw.get("ref"),
        kw.get("user"),
    )
    with e.connect() as c, writer(c).begin():
        return apply_batch(SqlLedger(c), [(req, where)], at, render=render)[0].ok


def rid(e: Engine, device: str, sid: str) -> int:
    with e.connect() as c:
        return int(
            c.execute(select(Redemption.id).where(Redemption.idem_key == idem_key(device, sid))).scalar_one()
        )


@pytest.fixture
def ledger(engine: Engine) -> Engine:
    e = engine
    with e.connect() as c, c.begin():
        c.execute(
            insert(Product).values(
                sku="TOUR", title="City Tour", kind="ticket", quantity=1, deleted=False, created_at=T0
            )
        )
    create_orders(
        SqlDatabase(e),
        [
            OrderIn(code="A", title="Tour order", product="TOUR", quantity=10, site="sh"),
            OrderIn(code="B", title="Wash pack", quantity=5, site="ny"),
        ],
    )
    sh1, sh2, ny1 = place(e, "sh", "G1"), place(e, "sh", "G2"), place(e, "ny", "G1")
    assert scan(e, T0, sh1, "dev-1", "1", "A", 3, user="alice")
    assert scan(e, T0 + 100, sh1, "dev-1", "2", "A", 1, user="alice")
    assert scan(e, T0 + 110, sh1, "dev-1", "3", "", 1, op="annul", ref="2", user="alice")
    assert not scan(e, T0 + 200, sh2, "dev-2", "1", "A", 8)  # QTY_EXCEEDED: 7 left
    assert not scan(e, T0 + 300, sh2, "dev-2", "2", "NOPE", 2)  # UNKNOWN_CODE
    assert scan(e, T0 + 400, sh1, "dev-1", "4", "A", 2, user="alice")
    adjust.revert(SqlDatabase(e), rid(e, "dev-1", "4"), "boss", "wrong ticket")
    # 17:00 UTC: 12:00 the same day in New York, but already the next day in Shanghai.
    assert scan(e, T0 + 7 * 3600, ny1, "dev-3", "1", "B", 2, user="bob")
    assert not scan(
        e, T0 + 6.5 * 3600, sh1, "dev-1", "5", "B", 1, user="alice"
    )  # WRONG_SITE, 00:30 in Shanghai
    return e


def test_counts_by_site(ledger: Engine) -> None:
    rows = reports.counts(SqlDatabase(ledger), "site", reports.Scope(), "UTC")
    assert rows == [
        {
            "site": "ny",
            "redemptions": 1,
            "units": 2,
            "exits": 0,
            "undone": 0,
            "undone_units": 0,
            "denials": 0,
        },
        {
            "site": "sh",
            "redemptions": 1,
            "units": 3,
            "exits": 0,
            "undone": 2,
            "undone_units": 3,
            "denials": 3,
        },
    ]


def test_counts_by_gate_verifier_product(ledger: Engine) -> None:
    def pick(by: str) -> list[tuple[Any, ...]]:
        cols = [*reports.DIMENSIONS[by], "redemptions", "units", "undone", "denials"]
        return [
            tuple(r[c] for c in cols) for r in reports.counts(SqlDatabase(ledger), by, reports.Scope(), "UTC")
        ]

    assert pick("gate") == [("ny", "G1", 1, 2, 0, 0), ("sh", "G1", 1, 3, 2, 1), ("sh", "G2", 0, 0, 0, 2)]
    assert pick("verifier") == [("alice", 1, 3, 2, 1), ("bob", 1, 2, 0, 0), ("dev-2", 0, 0, 0, 2)]
    # The product's title when the order came from one, else the order's own title; no order = "".
    assert pick("product") == [("", 0, 0, 0, 1), ("City Tour", 1, 3, 2, 1), ("Wash pack", 1, 2, 0, 1)]


def test_counts_by_day_use_each_sites_time_zone(ledger: Engine) -> None:
    rows = reports.counts(SqlDatabase(ledger), "day", reports.Scope(), "UTC")
    assert [(r["day"], r["redemptions"], r["units"], r["undone"], r["denials"]) for r in rows] == [
        ("2026-03-01", 2, 5, 2, 2),
        ("2026-03-02", 0, 0, 0, 1),
    ]


def test_scope_filters(ledger: Engine) -> None:
    only_ny = reports.counts(SqlDatabase(ledger), "site", reports.Scope(site="ny"), "UTC")
    assert [r["site"] for r in only_ny] == ["ny"]
    seen = reports.counts(
        SqlDatabase(ledger), "site", reports.Scope(sites=frozenset({"sh"}), unsited=False), "UTC"
    )
    assert [r["site"] for r in seen] == ["sh"]
    nothing = reports.counts(
        SqlDatabase(ledger), "site", reports.Scope(sites=frozenset(), unsited=False), "UTC"
    )
    assert nothing == []
    window = reports.counts(SqlDatabase(ledger), "site", reports.Scope(since=T0 + 150, until=T0 + 350), "UTC")
    assert window == [
        {"site": "sh", "redemptions": 0, "units": 0, "exits": 0, "undone": 0, "undone_units": 0, "denials": 2}
    ]


def test_failed_by_reason(ledger: Engine) -> None:
    rows = reports.failed(SqlDatabase(ledger), reports.Scope(), "UTC")
    assert [(r["reason"], r["count"], r["units_asked"]) for r in rows] == [
        ("QTY_EXCEEDED", 1, 8),
        ("UNKNOWN_CODE", 1, 2),
        ("WRONG_SITE", 1, 1),
    ]
    by_gate = reports.failed(SqlDatabase(ledger), reports.Scope(), "UTC", by="gate")
    assert [(r["site"], r["gate"], r["reason"], r["count"]) for r in by_gate] == [
        ("sh", "G1", "WRONG_SITE", 1),
        ("sh", "G2", "QTY_EXCEEDED", 1),
        ("sh", "G2", "UNKNOWN_CODE", 1),
    ]


def test_csv_export_matches_rows(ledger: Engine) -> None:
    rows = reports.counts(SqlDatabase(ledger), "gate", reports.Scope(), "UTC")
    text = to_csv(rows, count_columns("gate"))
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert list(parsed[0]) == count_columns("gate")
    assert [(p["site"], p["gate"], p["units"], p["denials"]) for p in parsed] == [
        ("ny", "G1", "2", "0"),
        ("sh", "G1", "3", "1"),
        ("sh", "G2", "0", "2"),
    ]


# -- settlement ------------------------------------------------------------------------------------------
P = datetime(2026, 3, 1, 0, 0, tzinfo=UTC).timestamp()


@pytest.fixture
def sales(engine: Engine) -> Engine:
    e = engine
    create_orders(
        SqlDatabase(e),
        [
            OrderIn(
                code="S1", title="Ticket x10", quantity=10, site="sh", paid_at=datetime.fromtimestamp(P, UTC)
            ),
            OrderIn(code="S2", title="Ticket x4", quantity=4, site="sh"),
            OrderIn(
                code="S3", title="Ticket x2", quantity=2, site="sh", paid_at=datetime.fromtimestamp(P, UTC)
            ),
            OrderIn(
                code="S4",
                title="Voucher",
                kind="value",
                quantity=10000,
                site="sh",
                paid_at=datetime.fromtimestamp(P + 5 * DAY, UTC),
            ),
        ],
    )
    with e.connect() as c, c.begin():  # S2 was never marked paid: its creation time counts
        c.execute(update(Order).where(Order.code == "S2").values(paid_at=None, created_at=P + 3 * DAY))
    g = place(e, "sh", "G1")
    assert scan(e, P + 1 * DAY, g, "d", "1", "S1", 3)
    assert scan(e, P + 2 * DAY, g, "d", "2", "S1", 2)
    adjust.revert(SqlDatabase(e), rid(e, "d", "2"), "boss", "mistake")  # undone: settles nothing
    assert scan(e, P + 8 * DAY, g, "d", "3", "S1", 1)  # after the due date: already settled then
    adjust.refund(SqlDatabase(e), "S1", 2, "shop", "two fewer")
    assert scan(e, P + 4 * DAY, g, "d", "4", "S2", 1)
    adjust.cancel(SqlDatabase(e), "S3", "shop", "cancelled")
    assert scan(e, P + 6 * DAY, g, "d", "5", "S4", 1, amt=2500)
    return e


def test_settlement_entries_and_totals(sales: Engine) -> None:
    now = P + 8 * DAY + 3600
    view = settlement.settlement_view(
        settlement.settlement(SqlDatabase(sales), reports.Scope(), now, 7, "UTC")
    )
    lines = [
        (ln["code"], ln["cause"], ln["units"], ln["at"], ln["date"], ln["state"]) for ln in view["lines"]
    ]
    assert lines == [
        ("S1", "redeemed", 3, P + 1 * DAY, "2026-03-02", "settled"),
        ("S2", "redeemed", 1, P + 4 * DAY, "2026-03-05", "settled"),
        ("S4", "redeemed", 2500, P + 6 * DAY, "2026-03-07", "settled"),
        ("S1", "unredeemed", 5, P + 7 * DAY, "2026-03-08", "settled"),  # 10 - 2 refunded - 3 before due
        ("S2", "unredeemed", 3, P + 10 * DAY, "2026-03-11", "pending"),
        ("S4", "unredeemed", 7500, P + 12 * DAY, "2026-03-13", "pending"),
    ]
    assert view["totals"] == {
        "ticket": {"settled": 9, "pending": 3, "refunded_never": 2, "cancelled_never": 2},
        "value": {"settled": 2500, "pending": 7500, "refunded_never": 0, "cancelled_never": 0},
    }
    assert {"date": "2026-03-11", "kind": "ticket", "settled": 0, "pending": 3} in view["by_date"]


def test_settlement_range_and_days(sales: Engine) -> None:
    now = P + 8 * DAY + 3600
    scope = reports.Scope(since=P + 5 * DAY, until=P + 11 * DAY)
    view = settlement.settlement_view(settlement.settlement(SqlDatabase(sales), scope, now, 7, "UTC"))
    assert [(ln["code"], ln["cause"], ln["units"]) for ln in view["lines"]] == [
        ("S4", "redeemed", 2500),
        ("S1", "unredeemed", 5),
        ("S2", "unredeemed", 3),
    ]
    # With N = 0 every unredeemed unit settles at payment; redemptions then settle nothing more.
    zero = settlement.settlement_view(
        settlement.settlement(SqlDatabase(sales), reports.Scope(), now, 0, "UTC")
    )
    assert [(ln["code"], ln["units"], ln["at"]) for ln in zero["lines"]] == [
        ("S1", 8, P),
        ("S2", 4, P + 3 * DAY),
        ("S4", 10000, P + 5 * DAY),
    ]


def test_parse_when() -> None:
    # Dates and date-times without offset are wall-clock times, read later in each row's site zone.
    assert parse_when("2026-03-01", "since") == datetime(2026, 3, 1)
    assert parse_when("2026-03-01T08:30:00", "since") == datetime(2026, 3, 1, 8, 30)
    assert parse_when("2026-03-01T08:00:00+00:00", "since") == datetime(2026, 3, 1, 8, tzinfo=UTC).timestamp()
    assert parse_when("1700000000", "since") == 1700000000
    assert parse_when("", "since") is None
    with pytest.raises(ValidationFailed, match="since:"):
        parse_when("yesterday", "since")
    with pytest.raises(ValidationFailed, match="since:"):
        parse_when("1e999", "since")


# -- REST ------------------------------------------------------------------------------------------------
def test_rest_reports_with_roles(
    mosquitto: Any, gateway_factory: Callable[..., GatewayProc], tmp_path: Path
) -> None:
    db = tmp_path / "rest.db"
    e = make_engine(f"sqlite:///{db}")
    migrate(e)
    create_site(SqlDatabase(e), SiteIn(slug="s1", name="One"))
    create_site(SqlDatabase(e), SiteIn(slug="s2", name="Two"))
    create_user(SqlDatabase(e), "boss", "boss-password-1", "owner")
    create_user(SqlDatabase(e), "sup2", "sup2-password-1", "supervisor", ["s2"])
    create_user(SqlDatabase(e), "ver", "ver-password-1", "verifier", ["s1"])
    tokens = {u: issue_api_token(SqlDatabase(e), u, "tests") for u in ("boss", "sup2", "ver")}
    e.dispose()
    g = gateway_factory(mosquitto.url, db, env={"SETTLE_DAYS": "3"})

    def api(user: str, path: str) -> Any:
        return g.api("GET", path, headers={"authorization": f"Bearer {tokens[user]}"})

    orders = [
        {"code": "R-1", "title": "T1", "quantity": 5, "site": "s1"},
        {"code": "R-2", "title": "T2", "quantity": 5, "site": "s2"},
    ]
    assert g.api("POST", "/api/orders", json={"orders": orders}).status_code == 201
    for code, site, qty in (("R-1", "s1", 2), ("R-2", "s2", 1), ("R-2", "s2", 9)):
        assert (
            g.api(
                "POST",
                "/api/redeem",
                json={
                    "request_id": secrets.token_hex(8),
                    "code": code,
                    "site": site,
                    "qty": qty,
                    "by": "kim",
                },
            ).status_code
            == 200
        )

    r = api("boss", "/api/reports/counts?by=site")
    assert r.status_code == 200, r.text
    assert [(x["site"], x["units"], x["denials"]) for x in r.json()["rows"]] == [("s1", 2, 0), ("s2", 1, 1)]
    r = api("sup2", "/api/reports/counts?by=verifier")
    assert r.json()["rows"] == [
        {
            "verifier": "local",  # the local token's calls are recorded as `local`, not as `by` claims
            "redemptions": 1,
            "units": 1,
            "exits": 0,
            "undone": 0,
            "undone_units": 0,
            "denials": 1,
        }
    ]
    assert api("sup2", "/api/reports/counts?site=s1").status_code == 403
    assert api("ver", "/api/reports/counts").status_code == 403
    assert api("sup2", "/api/reports/settlement").status_code == 403  # settlement is for managers and up
    assert g.api("GET", "/api/reports/counts", local=False).status_code == 401

    r = api("boss", "/api/reports/failed.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert list(csv.DictReader(io.StringIO(r.text)))[0]["reason"] == "QTY_EXCEEDED"

    r = api("boss", "/api/reports/settlement")
    body = r.json()
    assert r.status_code == 200 and body["days"] == 3
    assert body["totals"]["ticket"]["settled"] == 3 and body["totals"]["ticket"]["pending"] == 7
    pending = [ln for ln in body["lines"] if ln["state"] == "pending"]
    assert all(ln["at"] == pytest.approx(ln["paid_at"] + 3 * DAY) for ln in pending)
    assert api("boss", "/api/reports/settlement?days=0").json()["totals"]["ticket"]["pending"] == 0
    r = api("boss", "/api/reports/settlement.csv?since=2000-01-01&tz=UTC")
    assert r.status_code == 200 and len(list(csv.DictReader(io.StringIO(r.text)))) == 4

    r = api("boss", "/api/reports/counts?by=week")
    assert r.status_code == 422
    r = api("boss", "/api/reports/counts?since=2026-03-02&until=2026-03-01")
    assert r.status_code == 422 and r.json()["error"]["message"] == "until must be after since"
    assert api("boss", "/api/reports/counts?tz=Mars/Olympus").status_code == 422
    since = time.time() + 3600
    assert api("boss", f"/api/reports/counts?since={since}").json()["rows"] == []


def test_bad_settle_days_stops_the_start(mosquitto: Any, gateway_factory: Callable[..., GatewayProc]) -> None:
    with pytest.raises(AssertionError, match="SETTLE_DAYS"):
        gateway_factory(mosquitto.url, env={"SETTLE_DAYS": "-1"})
