# Every route × role × own/other site: allowed or denied (the one error shape, nothing changed), and CSRF.
from __future__ import annotations

import hashlib
import hmac
import io
import itertools
import json
import sqlite3
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from gateway.adapters.brokers.mosquitto import Mosquitto
from gateway.adapters.db.engine import make_engine
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.entrypoints.http.app import create_app
from gateway.services.accounts import create_session, create_user, issue_api_token
from tests.conftest import GatewayProc

OWN, OTHER = "east", "west"
PASSWORD = "a-long-password"
# Who calls: the owner, one person per role working at `east`, the local token (an owner), nobody.
PRINCIPALS = ("owner", "local", "manager", "supervisor", "verifier", "anonymous")
RANK = {"verifier": 0, "supervisor": 1, "manager": 2, "owner": 3, "local": 3}
PUBLIC, SIGNED = "public", "signed"  # anyone; nobody without the request's own signature/form token
# Tables a denied request may still touch: sign-ins and the token's "last used" minute.
VOLATILE = {"auth_sessions", "api_tokens"}


@dataclass
class Req:
    method: str
    path: str
    kw: dict[str, Any] = field(default_factory=dict)
    stream: bool = False


@dataclass
class World:
    """A gateway with sites east and west and helpers that make fresh things at a site (as the owner)."""

    g: GatewayProc
    tokens: dict[str, str]
    cookie: str = ""
    csrf: str = ""
    n: Iterator[int] = field(default_factory=itertools.count)
    # One connection for all calls (a client per call costs more than the call); cookies cleared each time.
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=15, follow_redirects=False))

    def uniq(self, prefix: str) -> str:
        return f"{prefix}{next(self.n)}"

    def ok(self, method: str, path: str, **kw: Any) -> Any:
        self.http.cookies.clear()
        auth = {"authorization": f"Bearer {self.tokens['local']}", **kw.pop("headers", {})}
        r = self.http.request(method, self.g.http + path, headers=auth, **kw)
        assert r.status_code < 300, f"set-up {method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content and "json" in r.headers.get("content-type", "") else None

    def order(self, site: str) -> str:
        code = self.uniq("RT-")
        self.ok(
            "POST",
            "/api/orders",
            json={"orders": [{"code": code, "title": "T", "quantity": 9, "site": site}]},
        )
        return code

    def redemption(self, site: str) -> int:
        code = self.order(site)
        self.ok("POST", "/api/redeem", json={"code": code, "site": site, "request_id": self.uniq("r")})
        items = self.ok("GET", "/api/redemptions", params={"code": code})["items"]
        return int(items[0]["id"])

    def device(self, site: str, provisioned: bool = False) -> str:
        dev = self.uniq("dev")
        if provisioned:
            self.ok("POST", f"/api/fleet/devices/{dev}/provision", json={"site": site})
        else:
            self.ok("POST", "/api/devices", json={"device": dev, "site": site})
        return dev

    def bundle_tar(self) -> tuple[str, bytes]:
        """A fresh firmware bundle (a version of its own) signed with this gateway's OTA key."""
        version = self.uniq("9.0.")
        key = bytes.fromhex((self.g.var_dir / "ota-key").read_text().strip())
        files = {"hx/__init__.py": f"VERSION = {version!r}\n".encode()}
        raw = json.dumps(
            {
                "version": version,
                "files": {
                    p: {"size": len(d), "sha256": hashlib.sha256(d).hexdigest()} for p, d in files.items()
                },
            },
            sort_keys=True,
        ).encode()
        out = io.BytesIO()
        with tarfile.open(fileobj=out, mode="w") as tar:
            for name, data in [
                ("manifest.json", raw),
                ("manifest.sig", hmac.new(key, raw, "sha256").hexdigest().encode()),
                *files.items(),
            ]:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return version, out.getvalue()

    def bundle(self) -> str:
        version, tar = self.bundle_tar()
        self.ok("POST", "/api/ota/bundles", content=tar, headers={"content-type": "application/x-tar"})
        return version

    def product(self, site: str) -> str:
        sku = self.uniq("sku")
        self.ok("POST", "/api/products", json=product_body(sku, site))
        return sku


def product_body(sku: str, site: str) -> dict[str, Any]:
    return {"sku": sku, "title": "P", "quantity": 2, "rules": {"sites": [site]}}


def form(**data: str) -> dict[str, Any]:
    return {"data": data}


@dataclass(frozen=True)
class Rule:
    need: str  # the least role, PUBLIC or SIGNED
    make: Callable[[World, str], Req]  # a request that acts on something at the given site
    scoped: bool = False  # True: only the site's people (and owners) may
    # Statuses that still mean "let in": the handler ran and found nothing (a kept frame that is not there).
    found_nothing: frozenset[int] = frozenset()
    # The call has an echo: the gateway hears its own MQTT message later (a revoke's retained OFFLINE
    # status) and stores it; wait for that before the next call's "nothing changed" check.
    echo: bool = False


def R(need: str, make: Callable[[World, str], Req], scoped: bool = False, echo: bool = False) -> list[Rule]:
    return [Rule(need, make, scoped, echo)]


def get(path: str) -> Callable[[World, str], Req]:
    return lambda w, site: Req("GET", path)


# (method, path as the app declares it) -> the rules. A route missing here fails test_every_route_is_listed.
TABLE: dict[tuple[str, str], list[Rule]] = {
    ("GET", "/openapi.json"): R(PUBLIC, get("/openapi.json")),
    ("GET", "/docs"): R(PUBLIC, get("/docs")),
    ("GET", "/docs/oauth2-redirect"): R(PUBLIC, get("/docs/oauth2-redirect")),
    ("GET", "/redoc"): R(PUBLIC, get("/redoc")),
    ("GET", "/api/health"): R(PUBLIC, get("/api/health")),
    ("GET", "/"): R(PUBLIC, get("/")),
    ("GET", "/console"): R(PUBLIC, get("/console")),
    ("GET", "/console/login"): R(PUBLIC, get("/console/login")),
    ("GET", "/console/lang"): R(PUBLIC, get("/console/lang?to=zh-CN")),
    ("GET", "/console/static/{name}"): R(PUBLIC, get("/console/static/console.css")),
    # The sign-in form is checked by its own double-submit token; webhooks by their HMAC signature.
    ("POST", "/console/login"): R(
        SIGNED, lambda w, s: Req("POST", "/console/login", form(name="boss", password=PASSWORD))
    ),
    ("POST", "/api/webhooks/orders"): R(
        SIGNED, lambda w, s: Req("POST", "/api/webhooks/orders", {"content": b'{"id":"e1"}'})
    ),
    # -- verifier and up
    ("GET", "/api/sites"): R("verifier", get("/api/sites")),
    ("GET", "/api/auth/me"): R("verifier", get("/api/auth/me")),
    ("GET", "/console/redeem"): R("verifier", get("/console/redeem")),
    ("POST", "/console/logout"): R("verifier", lambda w, s: Req("POST", "/console/logout")),
    ("GET", "/api/orders/{code}"): R("verifier", lambda w, s: Req("GET", f"/api/orders/{w.order(s)}"), True),
    ("POST", "/api/redeem"): R(
        "verifier",
        lambda w, s: Req(
            "POST", "/api/redeem", {"json": {"code": w.order(s), "site": s, "request_id": w.uniq("q")}}
        ),
        True,
    ),
    ("POST", "/console/redeem"): R(
        "verifier",
        lambda w, s: Req("POST", "/console/redeem", form(code=w.order(s), site=s, request_id=w.uniq("c"))),
        True,
    ),
    # -- supervisor and up
    ("GET", "/api/redemptions"): R("supervisor", get("/api/redemptions")),
    ("GET", "/api/redemptions.csv"): R("supervisor", get("/api/redemptions.csv")),
    ("GET", "/api/inside"): R("supervisor", get("/api/inside")),
    ("GET", "/api/fleet/broker"): R("supervisor", get("/api/fleet/broker")),
    ("GET", "/api/fleet/devices"): R("supervisor", get("/api/fleet/devices")),
    ("GET", "/api/fleet/alarms"): R("supervisor", get("/api/fleet/alarms")),
    ("GET", "/console/live"): R("supervisor", get("/console/live")),
    ("GET", "/console/live/events"): R(
        "supervisor", lambda w, s: Req("GET", "/console/live/events", stream=True)
    ),
    ("GET", "/api/fleet/devices/{device}"): R(
        "supervisor", lambda w, s: Req("GET", f"/api/fleet/devices/{w.device(s)}"), True
    ),
    ("GET", "/api/reports/counts"): R(
        "supervisor", lambda w, s: Req("GET", f"/api/reports/counts?site={s}"), True
    ),
    ("GET", "/api/reports/counts.csv"): R(
        "supervisor", lambda w, s: Req("GET", f"/api/reports/counts.csv?site={s}"), True
    ),
    ("GET", "/api/reports/failed"): R(
        "supervisor", lambda w, s: Req("GET", f"/api/reports/failed?site={s}"), True
    ),
    ("GET", "/api/reports/failed.csv"): R(
        "supervisor", lambda w, s: Req("GET", f"/api/reports/failed.csv?site={s}"), True
    ),
    ("POST", "/api/redemptions/{redemption_id}/revert"): R(
        "supervisor",
        lambda w, s: Req("POST", f"/api/redemptions/{w.redemption(s)}/revert", {"json": {"reason": "r"}}),
        True,
    ),
    ("GET", "/console/orders/{code}"): R(
        "supervisor", lambda w, s: Req("GET", f"/console/orders/{w.order(s)}"), True
    ),
    ("GET", "/console/orders/{code}/qr.png"): R(
        "supervisor", lambda w, s: Req("GET", f"/console/orders/{w.order(s)}/qr.png"), True
    ),
    ("POST", "/console/orders/{code}/{action}"): [
        Rule("supervisor", lambda w, s: _console_revert(w, s), True),
        Rule(
            "manager",
            lambda w, s: Req("POST", f"/console/orders/{w.order(s)}/cancel", form(reason="x")),
            True,
        ),
    ],
    # -- manager and up
    ("POST", "/api/orders"): R(
        "manager",
        lambda w, s: Req("POST", "/api/orders", {"json": {"orders": [{"title": "T", "site": s}]}}),
        True,
    ),
    ("POST", "/api/orders/import"): R(
        "manager",
        lambda w, s: Req(
            "POST",
            "/api/orders/import",
            {"content": f"title,site\nT,{s}\n".encode(), "headers": {"content-type": "text/csv"}},
        ),
        True,
    ),
    ("GET", "/api/orders/{code}/qr.{fmt}"): R(
        "manager", lambda w, s: Req("GET", f"/api/orders/{w.order(s)}/qr.svg"), True
    ),
    ("GET", "/api/orders/{code}/ticket"): R(
        "manager", lambda w, s: Req("GET", f"/api/orders/{w.order(s)}/ticket"), True
    ),
    ("POST", "/api/orders/{code}/refund"): R(
        "manager", lambda w, s: Req("POST", f"/api/orders/{w.order(s)}/refund", {"json": {"units": 1}}), True
    ),
    ("POST", "/api/orders/{code}/cancel"): R(
        "manager",
        lambda w, s: Req("POST", f"/api/orders/{w.order(s)}/cancel", {"json": {"reason": "x"}}),
        True,
    ),
    ("GET", "/api/devices"): R("manager", get("/api/devices")),
    # Moving a device into `east`: the caller must also work where the device is now.
    ("POST", "/api/devices"): R(
        "manager",
        lambda w, s: Req("POST", "/api/devices", {"json": {"device": w.device(s), "site": OWN}}),
        True,
    ),
    ("POST", "/api/fleet/devices/{device}/provision"): R(
        "manager",
        lambda w, s: Req("POST", f"/api/fleet/devices/{w.uniq('new')}/provision", {"json": {"site": s}}),
        True,
    ),
    ("POST", "/api/fleet/devices/{device}/commands"): R(
        "manager",
        lambda w, s: Req("POST", f"/api/fleet/devices/{w.device(s)}/commands", {"json": {"cmd": "status"}}),
        True,
    ),
    ("POST", "/api/fleet/devices/{device}/revoke"): R(
        "manager",
        lambda w, s: Req("POST", f"/api/fleet/devices/{w.device(s, provisioned=True)}/revoke"),
        True,
        echo=True,
    ),
    ("POST", "/api/fleet/sites/{site}/commands"): R(
        "manager",
        lambda w, s: Req("POST", f"/api/fleet/sites/{s}/commands", {"json": {"cmd": "status"}}),
        True,
    ),
    ("GET", "/api/webhooks/outbound"): R("manager", get("/api/webhooks/outbound")),
    # Over-the-air updates: a bundle is fleet-wide (owners upload it); rolling it out needs the device's site.
    ("POST", "/api/ota/bundles"): R(
        "owner",
        lambda w, s: Req(
            "POST",
            "/api/ota/bundles",
            {"content": w.bundle_tar()[1], "headers": {"content-type": "application/x-tar"}},
        ),
    ),
    ("GET", "/api/ota/bundles"): R("manager", get("/api/ota/bundles")),
    ("GET", "/api/ota/devices"): R("manager", get("/api/ota/devices")),
    ("POST", "/api/ota/rollouts"): [
        Rule(
            "manager",
            lambda w, s: Req(
                "POST", "/api/ota/rollouts", {"json": {"version": w.bundle(), "device": w.device(s)}}
            ),
            True,
        ),
        Rule("manager", lambda w, s: _site_rollout(w, s), True),
        # The whole fleet at once is for owners (all sites) only.
        Rule(
            "owner",
            lambda w, s: Req("POST", "/api/ota/rollouts", {"json": {"version": w.bundle(), "all": True}}),
        ),
    ],
    ("GET", "/console/updates"): R("manager", get("/console/updates")),
    ("POST", "/console/updates/upload"): R(
        "owner",
        lambda w, s: Req(
            "POST", "/console/updates/upload", {"files": {"bundle": ("b.tar", w.bundle_tar()[1])}}
        ),
    ),
    ("POST", "/console/updates/rollout"): R(
        "manager",
        lambda w, s: Req(
            "POST", "/console/updates/rollout", form(version=w.bundle(), target=f"device:{w.device(s)}")
        ),
        True,
    ),
    ("GET", "/metrics"): R("owner", get("/metrics")),
    ("GET", "/api/camera/{device}/failures"): R(
        "owner", lambda w, s: Req("GET", f"/api/camera/{w.device(s)}/failures")
    ),
    ("GET", "/api/camera/{device}/failures/{index}"): [
        Rule(
            "owner",
            lambda w, s: Req("GET", f"/api/camera/{w.device(s)}/failures/0"),
            found_nothing=frozenset({404}),
        )
    ],
    ("GET", "/api/reports/settlement"): R(
        "manager", lambda w, s: Req("GET", f"/api/reports/settlement?site={s}"), True
    ),
    ("GET", "/api/reports/settlement.csv"): R(
        "manager", lambda w, s: Req("GET", f"/api/reports/settlement.csv?site={s}"), True
    ),
    ("GET", "/api/products"): R("manager", get("/api/products")),
    ("POST", "/api/products"): R(
        "manager", lambda w, s: Req("POST", "/api/products", {"json": product_body(w.uniq("sku"), s)}), True
    ),
    ("PUT", "/api/products/{sku}"): R("manager", lambda w, s: _product_edit(w, s), True),
    ("DELETE", "/api/products/{sku}"): R(
        "manager", lambda w, s: Req("DELETE", f"/api/products/{w.product(s)}"), True
    ),
    ("PUT", "/api/users/{name}/pin"): R(
        "manager",
        lambda w, s: Req(
            "PUT", f"/api/users/verifier-{s}/pin", {"json": {"site": s, "pin": str(10_000 + next(w.n))}}
        ),
        True,
    ),
    ("GET", "/console/orders"): R("manager", get("/console/orders")),
    ("GET", "/console/devices"): R("manager", get("/console/devices")),
    ("GET", "/console/devices/{device}"): R(
        "manager", lambda w, s: Req("GET", f"/console/devices/{w.device(s)}"), True
    ),
    ("POST", "/console/devices/{device}/cmd"): R(
        "manager", lambda w, s: Req("POST", f"/console/devices/{w.device(s)}/cmd", form(cmd="status")), True
    ),
    ("GET", "/console/reports"): R("manager", lambda w, s: Req("GET", f"/console/reports?site={s}"), True),
    ("GET", "/console/reports/redemptions.csv"): R(
        "manager", lambda w, s: Req("GET", f"/console/reports/redemptions.csv?site={s}"), True
    ),
    # -- owners
    ("POST", "/api/sites"): R(
        "owner", lambda w, s: Req("POST", "/api/sites", {"json": {"slug": w.uniq("site"), "name": "S"}})
    ),
    ("GET", "/console/users"): R("owner", get("/console/users")),
    ("POST", "/console/users"): R(
        "owner",
        lambda w, s: Req(
            "POST",
            "/console/users",
            form(action="create", name=w.uniq("u"), password=PASSWORD, role="verifier"),
        ),
    ),
}


def _console_revert(w: World, s: str) -> Req:
    rid = w.redemption(s)
    code = w.ok("GET", "/api/redemptions", params={"limit": 1})["items"][0]["code"]
    return Req("POST", f"/console/orders/{code}/revert", form(redemption_id=str(rid), reason="wrong"))


def _site_rollout(w: World, s: str) -> Req:
    w.device(s)  # the site has a device to update
    return Req("POST", "/api/ota/rollouts", {"json": {"version": w.bundle(), "site": s}})


def _product_edit(w: World, s: str) -> Req:
    sku = w.product(s)
    return Req("PUT", f"/api/products/{sku}", {"json": product_body(sku, OWN)})


def app_routes() -> set[tuple[str, str]]:
    app = create_app(lambda: None)  # type: ignore[arg-type,return-value]
    return {
        (m, r.path)
        for r in iter_route_contexts(app.routes)
        if r.path is not None
        for m in (r.methods or set()) - {"HEAD"}
    }


def test_every_route_is_listed() -> None:
    """A route added without an entry here (who may call it, at which site) fails this test."""
    routes = app_routes()
    assert routes - set(TABLE) == set(), "routes without an access rule in TABLE"
    assert set(TABLE) - routes == set(), "TABLE lists routes the app no longer has"


def state(db: Path) -> str:
    """A digest of everything the gateway stores, except sign-in bookkeeping."""
    con = sqlite3.connect(db)
    try:
        h = hashlib.sha256()
        names = [n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")]
        for name in names:
            if name in VOLATILE:
                continue
            # A refused look-up by code is recorded as a miss (services/guessing.py): that audit row is the
            # defence against code guessing, not a change a refusal must not make.
            where = " WHERE action <> 'code_miss'" if name == "audit" else ""
            for row in con.execute(f'SELECT * FROM "{name}"{where} ORDER BY rowid'):  # noqa: S608 - our own table names
                h.update(repr((name, row)).encode())
        return h.hexdigest()
    finally:
        con.close()


def settled(db: Path, quiet: float = 0.3, most: float = 10.0) -> None:
    """Wait until nothing stored changes for `quiet` seconds (an echo has landed)."""
    deadline = time.monotonic() + most
    last = state(db)
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = state(db)
        if now == last:
            return
        last = now


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    tmp: Path = tmp_path_factory.mktemp("table")
    broker = Mosquitto(workdir=tmp / "broker")
    broker.start()
    # GUESS_LIMIT: every principal's refused look-ups are misses from one address; the table is about
    # scope, not about the (separately tested) pause after too many misses.
    env = {"WEBHOOK_SECRET": "s" * 32, "FLEET_SILENCE_S": "1000000", "GUESS_LIMIT": "10000"}
    g = GatewayProc(broker.url, tmp / "t.db", tmp / "var", env=env).start()
    for slug in (OWN, OTHER):
        assert g.api("POST", "/api/sites", json={"slug": slug, "name": slug}).status_code == 201
    e = make_engine(f"sqlite:///{g.db_path}")
    boss = create_user(SqlDatabase(e), "boss", PASSWORD, "owner")
    tokens = {"owner": issue_api_token(SqlDatabase(e), "boss"), "local": g.token}
    for role in ("manager", "supervisor", "verifier"):
        create_user(SqlDatabase(e), f"{role}1", PASSWORD, role, [OWN])
        tokens[role] = issue_api_token(SqlDatabase(e), f"{role}1")
    for slug in (OWN, OTHER):
        create_user(SqlDatabase(e), f"verifier-{slug}", PASSWORD, "verifier", [slug])
    session = create_session(SqlDatabase(e), boss)
    e.dispose()
    w = World(g, tokens, session.cookie, session.csrf)
    yield w
    w.http.close()
    g.stop()
    broker.stop()


def allowed(rule: Rule, who: str, site: str) -> bool:
    if rule.need == PUBLIC:
        return True
    if rule.need == SIGNED or who == "anonymous":
        return False
    if RANK[who] < RANK[rule.need]:
        return False
    return not rule.scoped or RANK[who] == 3 or site == OWN


def send(
    w: World, req: Req, headers: dict[str, str], cookies: dict[str, str] | None = None
) -> httpx.Response:
    kw = dict(req.kw)
    hdrs = {**headers, **kw.pop("headers", {})}
    url = w.g.http + req.path
    client = w.http
    client.cookies.clear()
    for name, value in (cookies or {}).items():
        client.cookies.set(name, value)
    if req.stream:
        with client.stream(req.method, url, headers=hdrs, **kw) as r:
            return r  # the status and headers are enough; the live stream is closed here
    return client.request(req.method, url, headers=hdrs, **kw)


def denial_problem(r: httpx.Response, path: str, who: str) -> str | None:
    """None when `r` is a proper refusal: the one error shape under /api, the sign-in redirect or an
    error page on the console."""
    if path.startswith("/api") or path == "/metrics":  # /metrics answers in the API's error shape
        try:
            err = r.json()["error"]
            assert isinstance(err["code"], str) and isinstance(err["message"], str)
        except (ValueError, KeyError, TypeError, AssertionError):
            return f"not the one error shape: {r.status_code} {r.text[:120]}"
        want = {401} if who == "anonymous" else {401, 403, 404, 422}
        return None if r.status_code in want else f"status {r.status_code}"
    if who == "anonymous" and r.status_code == 303:
        return None if r.headers["location"].startswith("/console/login?next=") else "redirect elsewhere"
    return None if r.status_code in (403, 404) else f"status {r.status_code}"


KEYS = sorted(TABLE)


@pytest.mark.parametrize("key", KEYS, ids=[f"{m} {p}" for m, p in KEYS])
def test_route_by_role_and_site(world: World, key: tuple[str, str]) -> None:
    problems: list[str] = []
    for i, rule in enumerate(TABLE[key]):
        for who in PRINCIPALS:
            for site in (OWN, OTHER) if rule.scoped else (OWN,):
                req = rule.make(world, site)
                headers = {} if who == "anonymous" else {"authorization": f"Bearer {world.tokens[who]}"}
                before = state(world.g.db_path)
                r = send(world, req, headers)
                where = f"rule {i} {who}@{site}: {req.method} {req.path} -> {r.status_code}"
                if allowed(rule, who, site):
                    if (r.status_code >= 400 and r.status_code not in rule.found_nothing) or r.headers.get(
                        "location", ""
                    ).startswith("/console/login?next="):
                        problems.append(f"{where}: should be allowed ({r.text[:160]})")
                    if rule.echo:
                        settled(world.g.db_path)
                    continue
                bad = denial_problem(r, req.path, who)
                if bad:
                    problems.append(f"{where}: should be denied: {bad}")
                elif state(world.g.db_path) != before:
                    problems.append(f"{where}: denied, but the stored state changed")
    assert not problems, "\n".join(problems)


UNSAFE = [k for k in KEYS if k[0] in ("POST", "PUT", "DELETE") and TABLE[k][0].need not in (PUBLIC, SIGNED)]


@pytest.mark.parametrize("key", UNSAFE, ids=[f"{m} {p}" for m, p in UNSAFE])
def test_session_changes_need_csrf(world: World, key: tuple[str, str]) -> None:
    """A signed-in browser (the owner's session cookie) without the session's CSRF token changes nothing:
    what a cross-site form or fetch in that browser could send."""
    for rule in TABLE[key]:
        req = rule.make(world, OWN)
        before = state(world.g.db_path)
        r = send(world, req, {}, cookies={"hx_session": world.cookie})
        assert r.status_code == 403, f"{req.method} {req.path}: {r.status_code} {r.text[:200]}"
        if req.path.startswith("/api"):
            assert r.json()["error"]["code"] == "FORBIDDEN"
        assert state(world.g.db_path) == before, f"{req.method} {req.path} changed state without CSRF"


def test_import_refuses_a_cross_site_text_plain_body(world: World) -> None:
    """A cross-site form can send text/plain without asking first: the import never reads it as orders."""
    before = state(world.g.db_path)
    r = world.g.api(
        "POST", "/api/orders/import", content=b"title,site\nT,east\n", headers={"content-type": "text/plain"}
    )
    assert r.status_code == 415 and r.json()["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert state(world.g.db_path) == before
