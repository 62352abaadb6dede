# Local access without "anyone on this box": the local token, the Host allowlist, proxies, secret files.
from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.adapters.brokers.mosquitto import Mosquitto
from gateway.entrypoints.http.hosts import allowed_names, host_name, host_ok
from tests.conftest import ROOT, GatewayProc


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    b = Mosquitto(workdir=tmp_path_factory.mktemp("la-broker"))
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="module")
def gw(broker: Mosquitto, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProc]:
    tmp = tmp_path_factory.mktemp("la")
    g = GatewayProc(broker.url, tmp / "la.db", tmp / "var", env={"ALLOWED_HOSTS": "shop.lan"}).start()
    yield g
    g.stop()


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def sign_in(client: httpx.Client, base: str, name: str, password: str, **headers: str) -> httpx.Response:
    page = client.get(base + "/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    return client.post(
        base + "/console/login",
        data={"name": name, "password": password, "csrf": token.group(1)},
        headers=headers,
    )


def test_secret_files_are_the_gateways_users_only(gw: GatewayProc) -> None:
    """Order codes are bearer credentials and the token is an owner: nobody else on the box reads them."""
    for name in ("local-token", "owner-password.txt"):
        assert mode(gw.var_dir / name) == 0o600, name
    for path in (gw.db_path, gw.db_path.with_name(gw.db_path.name + "-wal")):
        assert mode(path) == 0o600, path


def test_only_the_token_in_the_file_is_the_local_credential(gw: GatewayProc) -> None:
    assert gw.api("GET", "/api/auth/me").json()["name"] == "local"
    for bad in ("hxl_" + "x" * 43, gw.token[:-1], "hxl_"):
        r = gw.api("GET", "/api/auth/me", headers={"authorization": f"Bearer {bad}"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHENTICATED"


def test_the_owner_password_file_goes_after_the_first_sign_in(gw: GatewayProc) -> None:
    path = gw.var_dir / "owner-password.txt"
    password = path.read_text().strip()
    with httpx.Client(follow_redirects=False) as c:
        assert sign_in(c, gw.http, "owner", "wrong-password").status_code == 401
        assert path.exists()
        r = sign_in(c, gw.http, "owner", password)
        assert r.status_code == 303, r.text[:300]
    assert not path.exists()
    assert password not in gw.log()  # neither the banner nor the log carried it


def test_dns_rebinding_names_are_refused(gw: GatewayProc) -> None:
    """A page on evil.example that re-points its name at the gateway speaks to it with that Host."""
    for host in ("evil.example", "evil.example:80", "localhost.evil.example"):
        r = httpx.get(gw.http + "/api/health", headers={"host": host})
        assert r.status_code == 400 and r.json()["error"]["code"] == "BAD_HOST", host
        r = httpx.post(gw.http + "/console/login", headers={"host": host})
        assert r.status_code == 400 and r.json()["error"]["code"] == "BAD_HOST", host
    for host in (f"127.0.0.1:{gw.port}", f"localhost:{gw.port}", "shop.lan", "SHOP.LAN:8000", "[::1]:1"):
        assert httpx.get(gw.http + "/api/health", headers={"host": host}).status_code == 200, host


def test_host_names_pure() -> None:
    assert host_name("[::1]:8000") == "::1" and host_name("Shop.Lan.:80") == "shop.lan"
    names = allowed_names("shop.lan, till-2", "0.0.0.0")
    assert names is not None and {"localhost", "shop.lan", "till-2"} <= names
    assert host_ok("10.1.2.3:8000", names) and host_ok("", names) and not host_ok("x.example", names)
    assert not host_ok("[evil", names) and not host_ok(":80", names)
    assert allowed_names("*", "") is None and host_ok("anything", None)


def test_forwarded_headers_only_from_configured_proxies(
    broker: Mosquitto, gw: GatewayProc, tmp_path: Path
) -> None:
    """Without TRUSTED_PROXIES a local process cannot claim to be an HTTPS client (or another address);
    from a configured proxy the session cookie is marked Secure."""
    with httpx.Client(follow_redirects=False) as c:
        r = sign_in(c, gw.http, "nobody", "x" * 12, **{"x-forwarded-proto": "https"})
        login_cookie = r.headers.get("set-cookie", "")
        assert "hx_login_csrf" in login_cookie and "secure" not in login_cookie.lower()
    proxied = GatewayProc(
        broker.url, tmp_path / "p.db", tmp_path / "var", env={"TRUSTED_PROXIES": "127.0.0.1/32"}
    )
    proxied.start()
    try:
        with httpx.Client(follow_redirects=False) as c:
            r = sign_in(c, proxied.http, "nobody", "x" * 12, **{"x-forwarded-proto": "https"})
            assert "secure" in r.headers.get("set-cookie", "").lower()
    finally:
        proxied.stop()


def test_trust_loopback_is_refused_with_a_pointer(tmp_path: Path) -> None:
    env = {"TRUST_LOOPBACK": "true", "VAR_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    p = subprocess.run(
        [sys.executable, "-m", "gateway", "run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2 and "local-token" in p.stderr
