# Console times: each row's time is shown in the zone of its site, the TIMEZONE setting only without one.
from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select

from gateway.adapters.db.engine import make_engine, writer
from gateway.adapters.db.models import Site
from gateway.adapters.db.repositories.ledger import SqlLedger
from gateway.adapters.mqtt.oled import render
from gateway.services.ledger import Place, Request, apply_batch
from tests.conftest import GatewayProc

OWNER_PASSWORD = "owner-secret-1"
# 2026-07-01 10:00 UTC: 12:00 in Berlin (summer time), 18:00 in Shanghai, 10:00 in the gateway's UTC.
AT = datetime(2026, 7, 1, 10, 0, tzinfo=UTC).timestamp()
UNTIL = datetime(2030, 1, 31, 23, 30, tzinfo=UTC).timestamp()  # 00:30 on Feb 1 in Berlin, 07:30 in Shanghai


def sign_in(g: GatewayProc) -> httpx.Client:
    c = httpx.Client(base_url=g.http, timeout=30)
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/console/login").text)
    assert token is not None
    r = c.post("/console/login", data={"csrf": token.group(1), "name": "owner", "password": OWNER_PASSWORD})
    assert r.status_code in (200, 303), r.text
    return c


def test_console_shows_each_time_in_its_sites_zone(
    mosquitto: Any, gateway_factory: Callable[..., GatewayProc]
) -> None:
    """Hole 16: the console renders an order's and a redemption's times in that site's zone (Berlin,
    Shanghai), and rows without a site in the gateway's TIMEZONE, instead of all in the global zone."""
    g = gateway_factory(mosquitto.url, env={"OWNER_PASSWORD": OWNER_PASSWORD, "TIMEZONE": "UTC"})
    for slug, tz in (("ber", "Europe/Berlin"), ("sha", "Asia/Shanghai")):
        assert (
            g.api("POST", "/api/sites", json={"slug": slug, "name": slug, "timezone": tz}).status_code == 201
        )
    until = datetime.fromtimestamp(UNTIL, UTC).isoformat()
    orders = [
        {"code": f"T-{s}", "title": "Pass", "quantity": 5, "site": s, "valid_until": until}
        for s in ("ber", "sha")
    ] + [{"code": "T-none", "title": "Pass", "quantity": 5, "valid_until": until}]
    assert g.api("POST", "/api/orders", json={"orders": orders}).status_code == 201
    e = make_engine(f"sqlite:///{g.db_path}")
    try:
        with e.connect() as c, writer(c).begin():
            sites = dict(c.execute(select(Site.slug, Site.id)).all())
            for i, (code, slug, tz) in enumerate(
                [
                    ("T-ber", "ber", "Europe/Berlin"),
                    ("T-sha", "sha", "Asia/Shanghai"),
                    ("T-none", None, "UTC"),
                ]
            ):
                place = Place(sites.get(slug) if slug else None, "Gate 1", ZoneInfo(tz))
                req = Request("web-owner", f"t{i}", code, 1, "in", None, "redeem", None, None, "owner")
                apply_batch(SqlLedger(c), [(req, place)], AT, render=render)
    finally:
        e.dispose()
    c = sign_in(g)
    try:
        ber = c.get("/console/orders/T-ber").text
        assert "2030-02-01 00:30" in ber  # valid until, Berlin
        assert "2026-07-01 12:00:00" in ber  # the redemption, Berlin summer time
        sha = c.get("/console/orders/T-sha").text
        assert "2030-02-01 07:30" in sha and "2026-07-01 18:00:00" in sha
        none = c.get("/console/orders/T-none").text
        assert "2030-01-31 23:30" in none and "2026-07-01 10:00:00" in none
        live = c.get("/console/live").text
        feed = re.findall(r'<td title="([^"]+)">(\d\d:\d\d:\d\d)</td>', live)
        assert sorted(feed) == [
            ("Asia/Shanghai", "18:00:00"),
            ("Europe/Berlin", "12:00:00"),
            ("UTC", "10:00:00"),
        ]
    finally:
        c.close()
