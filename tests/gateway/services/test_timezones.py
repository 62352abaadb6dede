# Report days and report bounds are each site's own zone, cut with zoneinfo (right across DST changes).
from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select

from gateway.adapters.db.engine import make_engine, migrate, writer
from gateway.adapters.db.models import Order, Site
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.adapters.db.repositories.ledger import SqlLedger
from gateway.adapters.mqtt.oled import render
from gateway.domain.roles import Person
from gateway.services import queries, reports
from gateway.services.accounts import create_user, issue_api_token
from gateway.services.ledger import Place, Request, apply_batch
from gateway.services.orders import OrderIn, SiteIn, create_orders, create_site
from tests.conftest import GatewayProc

BERLIN, SHANGHAI = ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Shanghai")
OWNER = Person(1, "boss", "owner", frozenset())


def at(tz: ZoneInfo, *when: int) -> float:
    return datetime(*when, tzinfo=tz).timestamp()  # type: ignore[misc]


# Scans at local wall-clock times, chosen at the edges of the days around Berlin's DST changes
# (2026-03-29 has 23 hours, 2026-10-25 has 25) and of Shanghai's days (UTC+8, no DST).
SCANS = [
    ("ber", at(BERLIN, 2026, 3, 28, 23, 30)),  # Mar 28 (22:30 UTC)
    ("ber", at(BERLIN, 2026, 3, 29, 0, 30)),  # Mar 29 (23:30 UTC on Mar 28)
    ("ber", at(BERLIN, 2026, 3, 29, 23, 30)),  # Mar 29, after the change (21:30 UTC)
    ("ber", at(BERLIN, 2026, 3, 30, 0, 15)),  # Mar 30 (22:15 UTC on Mar 29)
    ("ber", at(BERLIN, 2026, 10, 25, 0, 30)),  # Oct 25 (22:30 UTC on Oct 24)
    ("ber", at(BERLIN, 2026, 10, 25, 23, 30)),  # Oct 25, after the change (22:30 UTC)
    ("ber", at(BERLIN, 2026, 10, 26, 0, 30)),  # Oct 26 (23:30 UTC on Oct 25)
    ("sha", at(SHANGHAI, 2026, 3, 29, 0, 30)),  # Mar 29 (16:30 UTC on Mar 28)
    ("sha", at(SHANGHAI, 2026, 3, 29, 23, 50)),  # Mar 29 (15:50 UTC)
    ("sha", at(SHANGHAI, 2026, 3, 30, 0, 10)),  # Mar 30 (16:10 UTC on Mar 29)
]


def seed(e: Engine) -> None:
    create_site(SqlDatabase(e), SiteIn(slug="ber", name="Berlin", timezone="Europe/Berlin"))
    create_site(SqlDatabase(e), SiteIn(slug="sha", name="Shanghai", timezone="Asia/Shanghai"))
    create_orders(
        SqlDatabase(e), [OrderIn(code=f"TZ-{s}", title="Pack", quantity=100, site=s) for s in ("ber", "sha")]
    )
    with e.connect() as c, writer(c).begin():
        sites = {
            r.slug: (r.id, ZoneInfo(r.timezone)) for r in c.execute(select(Site.slug, Site.id, Site.timezone))
        }
        for i, (slug, t) in enumerate(SCANS):
            sid, tz = sites[slug]
            req = Request(f"gate-{slug}", f"s{i}", f"TZ-{slug}", 1, "in", None)
            apply_batch(SqlLedger(c), [(req, Place(sid, "Gate 1", tz))], t, render=render)
        assert c.execute(select(Order.used).where(Order.code == "TZ-ber")).scalar() == 7


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Engine]:
    url = (
        f"sqlite:///{tmp_path / 'tz.db'}" if request.param == "sqlite" else request.getfixturevalue("pg_url")
    )
    e = make_engine(url)
    migrate(e)
    seed(e)
    yield e
    e.dispose()


def by_day(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {r["day"]: r["units"] for r in rows if r["units"]}


def test_report_days_are_each_sites_local_days_across_dst(engine: Engine) -> None:
    """Hole 16: by-day counts put every row on its site's local date, with the 23- and 25-hour days of
    Berlin's DST changes cut at Berlin's own midnights."""
    ber = reports.counts(SqlDatabase(engine), "day", reports.Scope(site="ber"), "UTC")
    assert by_day(ber) == {
        "2026-03-28": 1,
        "2026-03-29": 2,
        "2026-03-30": 1,
        "2026-10-25": 2,
        "2026-10-26": 1,
    }
    sha = reports.counts(SqlDatabase(engine), "day", reports.Scope(site="sha"), "UTC")
    assert by_day(sha) == {"2026-03-29": 2, "2026-03-30": 1}


def test_date_bounds_are_each_sites_own_midnight(engine: Engine) -> None:
    """Hole 16: `since`/`until` given as dates (naive wall-clock times) cut each site's rows at that site's
    midnight: one report over two zones counts exactly each site's Mar 29 and Oct 25."""
    mar29 = reports.Scope(since=datetime(2026, 3, 29), until=datetime(2026, 3, 30))
    rows = reports.counts(SqlDatabase(engine), "site", mar29, "UTC")
    assert {r["site"]: r["units"] for r in rows} == {"ber": 2, "sha": 2}
    oct25 = reports.Scope(since=datetime(2026, 10, 25), until=datetime(2026, 10, 26))
    assert {r["site"]: r["units"] for r in reports.counts(SqlDatabase(engine), "site", oct25, "UTC")} == {
        "ber": 2
    }
    # An instant (Unix seconds) is the same everywhere: 2026-03-29 00:00 UTC.
    utc = reports.Scope(since=at(ZoneInfo("UTC"), 2026, 3, 29), until=at(ZoneInfo("UTC"), 2026, 3, 30))
    assert {r["site"]: r["units"] for r in reports.counts(SqlDatabase(engine), "site", utc, "UTC")} == {
        "ber": 2,
        "sha": 2,
    }
    assert by_day(reports.counts(SqlDatabase(engine), "day", utc, "UTC")) == {
        "2026-03-29": 2,
        "2026-03-30": 2,
    }


def test_console_report_cuts_days_at_each_sites_midnight(engine: Engine) -> None:
    """Hole 16: the console's report path agrees: its days are each site's local dates (zoneinfo, not the
    console zone's current UTC offset), so the day after the spring change holds what it should."""
    now = at(ZoneInfo("UTC"), 2026, 3, 30, 12)
    data = queries.report(SqlDatabase(engine), OWNER, ZoneInfo("UTC"), 3, "ber", now=now)
    assert [(d["k"], d["units"]) for d in data["daily"]] == [("03-28", 1), ("03-29", 2), ("03-30", 1)]
    both = queries.report(SqlDatabase(engine), OWNER, ZoneInfo("UTC"), 2, None, now=now)
    assert [(d["k"], d["units"]) for d in both["daily"]] == [("03-29", 4), ("03-30", 2)]
    assert {r["k"]: r["units"] for r in both["sites"]} == {"ber": 3, "sha": 3}
    # The same period through the report module (the /api/reports numbers) gives the same counts.
    scope = reports.Scope(since=both["since_local"])
    api = reports.counts(SqlDatabase(engine), "day", scope, "UTC")
    assert {k[5:]: v for k, v in by_day(api).items() if k < "2026-04"} == {"03-29": 4, "03-30": 2}
    # Autumn: Oct 25 has 25 hours in Berlin, and all of them count on Oct 25.
    autumn = queries.report(
        SqlDatabase(engine), OWNER, ZoneInfo("UTC"), 2, "ber", now=at(BERLIN, 2026, 10, 26, 12)
    )
    assert [(d["k"], d["units"]) for d in autumn["daily"]] == [("10-25", 2), ("10-26", 1)]


def test_todays_counters_start_at_each_sites_midnight(engine: Engine) -> None:
    """Hole 16: "today" on the live page is each site's own local day."""
    # 2026-03-29 22:30 UTC: still Mar 29 in the console's UTC, already Mar 30 in Berlin (00:30) and
    # Shanghai (06:30): each site's today holds only its one Mar 30 scan.
    now = at(ZoneInfo("UTC"), 2026, 3, 29, 22, 30)
    gates = queries.today_counters(SqlDatabase(engine), OWNER, ZoneInfo("UTC"), now=now)["gates"]
    assert {g["site"]: g["units"] for g in gates} == {"ber": 1, "sha": 1}


def test_rest_report_dates_mean_each_sites_zone(
    mosquitto: Any, gateway_factory: Callable[..., GatewayProc], tmp_path: Path
) -> None:
    """Hole 16: over REST, `since=2026-03-29&until=2026-03-30` is each site's own Mar 29 (the TIMEZONE
    setting, here UTC, is only for rows without a site)."""
    db = tmp_path / "rest.db"
    e = make_engine(f"sqlite:///{db}")
    migrate(e)
    seed(e)
    create_user(SqlDatabase(e), "boss", "boss-password-1", "owner")
    token = issue_api_token(SqlDatabase(e), "boss", "tests")
    e.dispose()
    g = gateway_factory(mosquitto.url, db, env={"TIMEZONE": "UTC"})
    auth = {"authorization": f"Bearer {token}"}
    r = g.api("GET", "/api/reports/counts?by=site&since=2026-03-29&until=2026-03-30", headers=auth)
    assert r.status_code == 200, r.text
    assert {x["site"]: x["units"] for x in r.json()["rows"]} == {"ber": 2, "sha": 2}
    r = g.api("GET", "/api/reports/counts?by=day&since=2026-10-25T00:00:00&until=2026-10-26", headers=auth)
    assert {x["day"]: x["units"] for x in r.json()["rows"]} == {"2026-10-25": 2}
    # An instant since (with offset) and a wall-clock until mix: each bound keeps its own meaning.
    r = g.api(
        "GET", "/api/reports/counts?by=site&since=2026-03-29T00:00:00%2B00:00&until=2026-03-30", headers=auth
    )
    assert r.status_code == 200 and {x["site"]: x["units"] for x in r.json()["rows"]} == {"ber": 1, "sha": 1}
