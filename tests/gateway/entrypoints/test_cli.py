# `python -m gateway run` as `make run` starts it: own broker, demo data, clean stop, data kept, bad settings.
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from gateway.adapters.brokers.mosquitto import free_port, port_open
from tests.helpers import wait_for

ROOT = Path(__file__).resolve().parents[3]


def start(var: Path, http: int, broker: int, **env: str) -> subprocess.Popen[str]:
    e = dict(os.environ)
    for k in ("MQTT_URL", "DATABASE_URL", "DEMO"):
        e.pop(k, None)
    e.update(VAR_DIR=str(var), HTTP_PORT=str(http), BROKER_PORT=str(broker), **env)
    return subprocess.Popen(
        [sys.executable, "-m", "gateway", "run"],
        cwd=ROOT,
        env=e,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/api/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_run_starts_broker_loads_demo_and_keeps_data(tmp_path: Path) -> None:
    http, broker = free_port(), free_port()
    url = f"http://127.0.0.1:{http}"
    p = start(tmp_path, http, broker)
    try:
        wait_for(lambda: healthy(url), 30, "gateway up")
        h = httpx.get(url + "/api/health").json()
        assert h["mqtt"]["broker_kind"] == "mosquitto" and h["mqtt"]["broker"] == f"127.0.0.1:{broker}"
        body = {"request_id": secrets.token_hex(8), "code": "HXDEMO-ONCE-0003", "site": "demo"}
        # Being on the gateway's machine is no credential; the local token (0600) is.
        anon = httpx.post(url + "/api/redeem", json=body)
        assert anon.status_code == 401 and anon.json()["error"]["code"] == "UNAUTHENTICATED"
        token_file = tmp_path / "local-token"
        assert token_file.stat().st_mode & 0o777 == 0o600
        auth = {"authorization": "Bearer " + token_file.read_text().strip()}
        v = httpx.post(url + "/api/redeem", json=body, headers=auth).json()
        assert v["ok"]
    finally:
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=20)
    assert p.returncode == 0, out
    password = (tmp_path / "owner-password.txt").read_text().strip()
    assert password not in out, "the banner went to a pipe (a log), not a terminal: no password in it"
    assert "HXDEMO-VIP-0001" in out and "tools.sim" in out and f"http://127.0.0.1:{http}/docs" in out
    assert (tmp_path / "qr" / "HXDEMO-VIP-0001.png").exists() and (
        tmp_path / "qr" / "HXDEMO-VIP-0001.svg"
    ).exists()
    assert not port_open("127.0.0.1", broker), "Ctrl-C must stop the broker too"
    p2 = start(tmp_path, http, broker)
    try:
        wait_for(lambda: healthy(url), 30, "gateway up again")
        again = httpx.post(
            url + "/api/redeem",
            json={"request_id": secrets.token_hex(8), "code": "HXDEMO-ONCE-0003", "site": "demo"},
            headers=auth,  # the token is kept across restarts
        ).json()
        assert again["reason"] == "ALREADY_USED"  # the data survived the restart
    finally:
        p2.send_signal(signal.SIGINT)
        out2, _ = p2.communicate(timeout=20)
    assert "Demo orders" not in out2  # not loaded twice


def test_bad_settings_are_refused_clearly(tmp_path: Path) -> None:
    p = start(tmp_path, free_port(), free_port(), MQTT_URL="http://nope")
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 2 and "MQTT_URL" in out
    p = start(tmp_path, free_port(), free_port(), DATABASE_URL="mysql://x")
    out, _ = p.communicate(timeout=30)
    assert p.returncode == 2 and "DATABASE_URL" in out
    assert not (tmp_path / "hexiao.db").exists()


def test_busy_broker_port_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    busy = s.getsockname()[1]
    try:
        p = start(tmp_path, free_port(), busy)
        out, _ = p.communicate(timeout=30)
    finally:
        s.close()
    assert p.returncode == 2 and f"port {busy}" in out and "BROKER_PORT" in out


def test_people_and_tokens_from_the_command_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    env["VAR_DIR"] = str(tmp_path)

    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "gateway", *args],
            cwd=ROOT,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    missing = cli("token", "ghost")
    assert missing.returncode == 2 and "ghost" in missing.stderr and missing.stdout == ""
    weak = cli("add-user", "ana", "--role", "verifier", stdin="x\nx\n")
    assert weak.returncode == 2
    made = cli("add-user", "ana", "--role", "verifier", stdin="a-long-password\na-long-password\n")
    assert made.returncode == 0, made.stderr
    assert "a-long-password" not in made.stdout + made.stderr
    tok = cli("token", "ana")
    assert tok.returncode == 0 and tok.stdout.startswith("hxt_")
    from gateway.adapters.db.engine import make_engine
    from gateway.adapters.db.repositories.database import SqlDatabase
    from gateway.services.accounts import token_person

    person = token_person(SqlDatabase(make_engine(f"sqlite:///{tmp_path / 'hexiao.db'}")), tok.stdout.strip())
    assert person is not None and (person.name, person.role) == ("ana", "verifier")


def test_a_killed_gateway_leaves_no_broker_in_the_way(tmp_path: Path) -> None:
    """SIGKILL leaves our Mosquitto child running on its port; the next start stops it and goes on."""
    http, broker = free_port(), free_port()
    url = f"http://127.0.0.1:{http}"
    p = start(tmp_path, http, broker)
    try:
        wait_for(lambda: healthy(url), 30, "gateway up")
    finally:
        p.kill()
        p.communicate(timeout=20)
    assert port_open("127.0.0.1", broker), "the orphaned broker is still there"
    p2 = start(tmp_path, http, broker)
    try:
        wait_for(lambda: healthy(url), 30, "gateway up again despite the orphan")
        assert httpx.post(
            url + "/api/redeem",
            json={"request_id": secrets.token_hex(8), "code": "HXDEMO-ONCE-0003", "site": "demo"},
            headers={"authorization": "Bearer " + (tmp_path / "local-token").read_text().strip()},
        ).json()["ok"]
    finally:
        p2.send_signal(signal.SIGINT)
        out, _ = p2.communicate(timeout=20)
    assert "previous gateway left running" in out
    assert not port_open("127.0.0.1", broker)


def test_open_lan_broker_refuses_to_start(tmp_path: Path) -> None:
    """BROKER_BIND off loopback with DEVICE_AUTH=false: no anonymous LAN broker, a clear error instead."""
    p = start(tmp_path, free_port(), free_port(), BROKER_BIND="0.0.0.0", DEVICE_AUTH="false")
    out, _ = p.communicate(timeout=30)
    assert p.returncode != 0 and "per-device logins are required" in out and "DEVICE_AUTH" in out
    assert not (tmp_path / "mosquitto" / "mosquitto.conf").exists()


def test_lan_broker_retires_the_demo_codes(tmp_path: Path) -> None:
    """Demo codes are printed everywhere: valid on a loopback broker, cancelled once it is on the LAN."""
    http = free_port()
    p = start(tmp_path, http, free_port())
    try:
        wait_for(lambda: healthy(f"http://127.0.0.1:{http}"), 30, "gateway up")
    finally:
        p.send_signal(signal.SIGINT)
        p.communicate(timeout=30)
    p = start(tmp_path, http, free_port(), BROKER_BIND="0.0.0.0", BROKER_TLS_PORT=str(free_port()))
    try:
        wait_for(lambda: healthy(f"http://127.0.0.1:{http}"), 30, "LAN gateway up")
        r = httpx.post(
            f"http://127.0.0.1:{http}/api/redeem",
            json={"request_id": secrets.token_hex(8), "code": "HXDEMO-ONCE-0003", "site": "demo"},
            headers={"authorization": "Bearer " + (tmp_path / "local-token").read_text().strip()},
            timeout=10,
        )
        assert r.json()["ok"] is False and r.json()["reason"] == "CANCELLED", r.text
    finally:
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=30)
    assert "Demo orders" not in out and "demo orders HXDEMO-VIP-0001" in out  # the log says why
    assert "Scanners (LAN)      TLS on 0.0.0.0:" in out and str(tmp_path / "ca" / "ca.pem") in out


def test_https_console_with_the_gateway_ca(tmp_path: Path) -> None:
    """HTTPS=true: the console and API answer over TLS with a certificate the gateway's CA signed (the
    one scanners pin); plain HTTP on that port gets no answer, and the provisioning client checks it."""
    import ssl

    from tools.provision.gwclient import Gateway

    http = free_port()
    p = start(tmp_path, http, free_port(), HTTPS="true")
    url = f"https://127.0.0.1:{http}"
    ca = tmp_path / "ca" / "ca.pem"
    try:
        wait_for(lambda: ca.exists(), 30, "the local CA")
        ctx = ssl.create_default_context(cafile=str(ca))

        def up() -> bool:
            try:
                return httpx.get(url + "/api/health", verify=ctx, timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(up, 30, "gateway up over HTTPS")
        assert not healthy(f"http://127.0.0.1:{http}")
        with pytest.raises(httpx.HTTPError):
            httpx.get(url + "/api/health", timeout=5)  # the system's CAs do not vouch for it
        gw = Gateway(url, None, ca=ca)
        assert gw.http.get("/api/health").status_code == 200
        gw.close()
    finally:
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=30)
    assert f"https://127.0.0.1:{http}/console" in out
