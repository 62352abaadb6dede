# Review: attacks on the HTTP security claims (site scope, abuse limits, secrets) against a real gateway.
from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.adapters.brokers.mosquitto import Mosquitto
from gateway.adapters.db.engine import make_engine
from gateway.services.accounts import create_user, issue_api_token
from tests.conftest import GatewayProc

TOK: dict[str, str] = {}
PW = "a-long-password-1"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProc]:
    tmp: Path = tmp_path_factory.mktemp("review-sec")
    broker = Mosquitto(workdir=tmp / "broker")
    broker.start()
    g = GatewayProc(broker.url, tmp / "r.db", tmp / "var").start()
    for slug in ("east", "west"):
        r = g.api("POST", "/api/sites", json={"slug": slug, "name": slug})
        assert r.status_code == 201, r.text
    engine = make_engine(f"sqlite:///{g.db_path}")
    for name, role, sites in (
        ("boss", "owner", None),
        ("m-east", "manager", ["east"]),
        ("s-east", "supervisor", ["east"]),
        ("v-east", "verifier", ["east"]),
        ("m-west", "manager", ["west"]),
    ):
        create_user(engine, name, PW, role, sites)
        TOK[name] = "Bearer " + issue_api_token(engine, name)
    engine.dispose()
    yield g
    g.stop()
    broker.stop()


def api(gw: GatewayProc, who: str, method: str, path: str, **kw: Any) -> httpx.Response:
    return gw.api(method, path, headers={"authorization": TOK[who], **kw.pop("headers", {})}, **kw)


def order(gw: GatewayProc, code: str, site: str) -> None:
    body = {"orders": [{"code": code, "title": "Secret west deal", "quantity": 3, "site": site}]}
    r = api(gw, "boss", "POST", "/api/orders", json=body)
    assert r.status_code == 201, r.text


def test_products_of_another_site_are_listed_to_a_manager(gw: GatewayProc) -> None:
    """Invariant 3: every route scoped by site. A west product is west's; east's manager reads it."""
    body = {"sku": "west-only", "title": "West staff discount", "quantity": 1, "rules": {"sites": ["west"]}}
    assert api(gw, "m-west", "POST", "/api/products", json=body).status_code == 201
    seen = [p["sku"] for p in api(gw, "m-east", "GET", "/api/products").json()]
    assert "west-only" not in seen


def test_a_check_at_my_site_tells_another_sites_order_exists(gw: GatewayProc) -> None:
    """Invariant 3 (and docs: another site's order answers like an unknown code, no existence oracle):
    an east verifier's `check` of a west code says WRONG_SITE, not UNKNOWN_CODE, and leaves no miss."""
    order(gw, "HX-WEST-ORACLE-1", "west")
    known = api(gw, "v-east", "POST", "/api/redeem", json={"code": "HX-WEST-ORACLE-1", "site": "east", "op": "check"})
    unknown = api(gw, "v-east", "POST", "/api/redeem", json={"code": "HX-WEST-NOPE-1", "site": "east", "op": "check"})
    assert known.status_code == unknown.status_code == 200, (known.text, unknown.text)
    assert unknown.json()["reason"] == "UNKNOWN_CODE"
    assert known.json()["reason"] == unknown.json()["reason"], known.json()
