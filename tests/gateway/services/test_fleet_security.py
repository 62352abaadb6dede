# Per-device MQTT security against a real Mosquitto: password format, ACL isolation, revocation.
from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.adapters.brokers.mosquitto import Mosquitto
from gateway.adapters.mqtt.acl import render_acl, render_passwords
from gateway.domain.device_secrets import hash_secret, new_secret, verify_secret
from tests.gateway.fleet_client import Client, CredentialBroker
from tests.helpers import wait_for

P = "hx/v1/dev/"


def test_our_hash_is_mosquitto_passwd_format(tmp_path: Path) -> None:
    tool = shutil.which("mosquitto_passwd")
    assert tool, "mosquitto_passwd ships with the mosquitto package"
    pw = tmp_path / "pw"
    subprocess.run([tool, "-c", "-b", str(pw), "dev-1", "s3cret-Pass"], check=True)
    user, hashed = pw.read_text().strip().split(":", 1)
    assert user == "dev-1"
    assert hashed.startswith("$7$")
    # Same algorithm and layout: our verifier accepts what mosquitto_passwd wrote ...
    assert verify_secret("s3cret-Pass", hashed)
    assert not verify_secret("s3cret-pass", hashed)
    # ... and our hashes have exactly its shape ($7$, iterations, 12-byte salt, 64-byte key).
    ours = hash_secret("s3cret-Pass")
    assert [len(x) for x in ours.split("$")] == [len(x) for x in hashed.split("$")]
    assert ours != hash_secret("s3cret-Pass")  # fresh salt every time
    assert verify_secret("s3cret-Pass", ours)


def test_secrets_are_random_and_safe() -> None:
    a, b = new_secret(), new_secret()
    assert a != b and len(a) == 32
    assert all(ch.isalnum() or ch in "-_" for ch in a)


def test_rendered_files() -> None:
    text = render_passwords([("b", "$7$h2"), ("a", "$7$h1")])
    assert text == "a:$7$h1\nb:$7$h2\n"
    assert render_passwords([]) == ""
    acl = render_acl("hexiao-gateway")
    assert "pattern write hx/v1/dev/%u/scan" in acl
    assert "pattern read hx/v1/dev/%u/cmd" in acl
    assert "pattern read hx/v1/gateway/status" in acl  # every device may see whether the gateway is up
    assert acl.rstrip().endswith(
        "user hexiao-gateway\ntopic readwrite hx/v1/dev/#\ntopic readwrite hx/v1/gateway/status"
    )


class Secured(CredentialBroker):
    """A real Mosquitto whose password/ACL files come from a credential table, as the gateway runs it."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(
            tmp,
            lambda auth: Mosquitto(
                workdir=tmp / "mosquitto", password_file=auth.password_file, acl_file=auth.acl_file
            ),
        )

    def gateway(self) -> Client:
        c = self.client(self.auth.gateway_user, self.auth.gateway_secret)
        c.wait_connected()
        c.subscribe(P + "+/scan")
        c.subscribe(P + "+/status")
        return c


@pytest.fixture
def secured(tmp_path: Path) -> Iterator[Secured]:
    s = Secured(tmp_path)
    try:
        yield s
    finally:
        s.close()


def test_only_issued_secrets_log_in(secured: Secured) -> None:
    secret, gen, rotated = secured.creds.issue("dev-a", "unix")
    assert (gen, rotated) == (1, False)
    assert secret not in secured.auth.password_file.read_text()  # only the hash is on disk
    assert secured.auth.password_file.stat().st_mode & 0o077 == 0
    secured.client("dev-a", secret).wait_connected()
    assert "Not authorized" in secured.client("dev-a", secret + "x").wait_refused()
    assert "Not authorized" in secured.client("dev-x", secret).wait_refused()
    assert "Not authorized" in secured.client(None, None, client_id="anon").wait_refused()


def test_a_device_can_neither_publish_as_nor_read_another(secured: Secured) -> None:
    sa, _, _ = secured.creds.issue("dev-a")
    sb, _, _ = secured.creds.issue("dev-b")
    gw = secured.gateway()
    a = secured.client("dev-a", sa)
    b = secured.client("dev-b", sb)
    a.wait_connected()
    b.wait_connected()
    b.subscribe(P + "dev-b/verdict")
    b.subscribe(P + "dev-b/cmd")
    # dev-a tries to read dev-b's verdicts and commands, directly and by wildcard.
    a.subscribe(P + "dev-b/verdict")
    a.subscribe(P + "dev-b/cmd")
    a.subscribe(P + "+/verdict")
    a.subscribe("#")
    a.subscribe(P + "dev-a/verdict")

    # Forged publishes as dev-b (scan and status), then one honest scan: once the honest one has
    # arrived, the forged ones (sent earlier on the same connection) would have arrived before it.
    a.publish(P + "dev-b/scan", '{"v":1,"sid":"forged","code":"X","qty":1,"dir":"in","at":0}')
    a.publish(P + "dev-b/status", '{"v":1,"state":"offline"}', retain=True)
    a.publish(P + "dev-a/verdict", '{"v":1,"sid":"self-made"}')  # a device may not write verdicts either
    a.publish(P + "dev-a/scan", '{"v":1,"sid":"honest","code":"X","qty":1,"dir":"in","at":0}')
    wait_for(lambda: gw.got(P + "dev-a/scan"), 10, "dev-a's own scan at the gateway")
    assert gw.got(P + "dev-b/scan") == []
    assert gw.got(P + "dev-b/status") == []

    # The gateway answers both devices; dev-a must receive only its own verdict.
    gw.publish(P + "dev-b/verdict", '{"v":1,"sid":"for-b"}')
    gw.publish(P + "dev-b/cmd", '{"v":1,"cmd":"beep","args":{}}')
    gw.publish(P + "dev-a/verdict", '{"v":1,"sid":"for-a"}')
    wait_for(lambda: a.got(P + "dev-a/verdict"), 10, "dev-a's verdict")
    wait_for(lambda: b.got(P + "dev-b/cmd"), 10, "dev-b's command")
    assert [json.loads(p)["sid"] for p in a.got(P + "dev-a/verdict")] == ["for-a"]
    assert all(t.startswith(P + "dev-a/") for t, _ in a.messages), a.messages
    assert b.got(P + "dev-b/verdict") == [b'{"v":1,"sid":"for-b"}']


def test_client_id_cannot_be_taken_over(secured: Secured) -> None:
    sa, _, _ = secured.creds.issue("dev-a")
    sb, _, _ = secured.creds.issue("dev-b")
    gw = secured.gateway()
    b = secured.client("dev-b", sb)
    b.wait_connected()
    b.subscribe(P + "dev-b/verdict")
    # dev-a connects claiming dev-b's client id: the broker uses the username as client id instead,
    # so dev-b's session is not kicked and dev-a does not inherit its subscriptions.
    thief = secured.client("dev-a", sa, client_id="dev-b")
    thief.wait_connected()
    gw.publish(P + "dev-b/verdict", '{"v":1,"sid":"still-b"}')
    wait_for(lambda: b.got(P + "dev-b/verdict"), 10, "dev-b still receiving")
    assert b.disconnects == []
    assert thief.messages == []


def test_revoked_device_is_dropped_at_once_and_refused(secured: Secured) -> None:
    sa, _, _ = secured.creds.issue("dev-a")
    sb, _, _ = secured.creds.issue("dev-b")
    a = secured.client("dev-a", sa)
    b = secured.client("dev-b", sb)
    a.wait_connected()
    b.wait_connected()
    out = secured.creds.revoke("dev-a")
    assert out["already"] is False
    assert "dev-a:" not in secured.auth.password_file.read_text()
    # The SIGHUP makes Mosquitto re-check connected clients: dev-a is disconnected, and its automatic
    # reconnect is refused. dev-b is untouched.
    wait_for(lambda: a.disconnects, 10, "revoked device disconnected")
    a.wait_refused()
    assert b.disconnects == []
    assert secured.creds.revoke("dev-a")["already"] is True


def test_rotation_invalidates_the_old_secret(secured: Secured) -> None:
    old, _, _ = secured.creds.issue("dev-a")
    new, gen, rotated = secured.creds.issue("dev-a")
    assert (gen, rotated) == (2, True) and new != old
    assert "Not authorized" in secured.client("dev-a", old).wait_refused()
    secured.client("dev-a", new).wait_connected()


def test_reserved_and_bad_names(secured: Secured) -> None:
    from gateway.domain.errors import Conflict, ValidationFailed

    with pytest.raises(Conflict):
        secured.creds.issue("hexiao-gateway")
    with pytest.raises(ValidationFailed):
        secured.creds.issue("dev/a")
    with pytest.raises(ValidationFailed):
        secured.creds.issue("x" * 33)


def test_file_rewrite_is_fast_enough_to_not_matter(secured: Secured) -> None:
    # Not a timing assertion: records that 50 devices regenerate into a valid file Mosquitto accepts.
    for i in range(50):
        secured.creds.issue(f"d{i}")
    t = time.perf_counter()
    secured.creds.sync()
    print(f"sync of 50 devices: {(time.perf_counter() - t) * 1000:.1f} ms")
    assert secured.auth.password_file.read_text().count("\n") == 51
    assert secured.broker.alive()
