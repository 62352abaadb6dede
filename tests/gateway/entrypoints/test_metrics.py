# GET /metrics: a stock Prometheus parser reads it; verdicts by reason, latency and fleet gauges move.
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.adapters.brokers.mosquitto import Mosquitto
from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.services.accounts import create_user, issue_api_token
from tests.conftest import GatewayProc


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[GatewayProc, dict[str, str]]]:
    tmp: Path = tmp_path_factory.mktemp("metrics")
    broker = Mosquitto(workdir=tmp / "broker")
    broker.start()
    g = GatewayProc(broker.url, tmp / "m.db", tmp / "var").start()
    e = make_engine(f"sqlite:///{tmp / 'm.db'}")
    create_user(SqlDatabase(e), "boss", "boss-password-1", "owner")
    create_user(SqlDatabase(e), "clerk", "clerk-password-1", "verifier")
    tokens = {
        "owner": issue_api_token(SqlDatabase(e), "boss"),
        "verifier": issue_api_token(SqlDatabase(e), "clerk"),
    }
    e.dispose()
    yield g, tokens
    g.stop()
    broker.stop()


def scrape(g: GatewayProc, token: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    r = g.api("GET", "/metrics", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def value(m: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(v for lab, v in m.get(name, []) if all(lab.get(k) == x for k, x in labels.items()))


def test_metrics_need_the_owner(gw: tuple[GatewayProc, dict[str, str]]) -> None:
    g, t = gw
    anon = g.api("GET", "/metrics", local=False)
    assert anon.status_code == 401 and anon.json()["error"]["code"] == "UNAUTHENTICATED"
    low = g.api("GET", "/metrics", local=False, headers={"Authorization": f"Bearer {t['verifier']}"})
    assert low.status_code == 403 and low.json()["error"]["code"] == "FORBIDDEN"


def test_verdicts_by_reason_and_latency_move(gw: tuple[GatewayProc, dict[str, str]]) -> None:
    g, t = gw
    auth = {"Authorization": f"Bearer {t['owner']}"}
    before = scrape(g, t["owner"])
    assert g.api("POST", "/api/sites", json={"slug": "shop", "name": "Shop"}, headers=auth).status_code == 201
    made = g.api("POST", "/api/orders", json={"orders": [{"code": "M-1", "title": "x"}]}, headers=auth)
    assert made.status_code in (200, 201), made.text
    for rid in ("m-1", "m-2"):
        body = {"code": "M-1", "site": "shop", "request_id": rid}
        assert g.api("POST", "/api/redeem", json=body, headers=auth).status_code == 200
    after = scrape(g, t["owner"])
    ok = value(after, "hexiao_verdicts_total", channel="http", reason="OK")
    used = value(after, "hexiao_verdicts_total", channel="http", reason="ALREADY_USED")
    assert ok - value(before, "hexiao_verdicts_total", channel="http", reason="OK") == 1
    assert used - value(before, "hexiao_verdicts_total", channel="http", reason="ALREADY_USED") == 1
    lat = "hexiao_verdict_latency_seconds_count"
    assert value(after, lat) - value(before, lat) == 2
    assert value(after, "hexiao_verdict_latency_seconds_bucket", le="+Inf") == value(after, lat)
    assert value(after, "hexiao_batch_size_count") >= 2 and value(after, "hexiao_commit_seconds_count") >= 2
    assert value(after, "hexiao_redeemed_total") - value(before, "hexiao_redeemed_total") == 1
    assert "hexiao_queue_depth" in after and value(after, "hexiao_mqtt_connected") == 1
    # The camera decoder is exported even before its first frame (a stock Prometheus sees the series).
    assert value(after, "hexiao_camera_decode_seconds_count") == 0
    assert value(after, "hexiao_camera_decode_seconds_bucket", le="+Inf") == 0
    assert "hexiao_camera_frames_total" in after
