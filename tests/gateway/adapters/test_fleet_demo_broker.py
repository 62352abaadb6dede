# The demo broker (amqtt, for machines without Mosquitto) enforces the same per-device rules.
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.adapters.brokers.amqtt_demo import DemoBroker
from gateway.adapters.brokers.amqtt_rules import allowed
from tests.gateway.fleet_client import CredentialBroker
from tests.helpers import free_port, wait_for

P = "hx/v1/dev/"


def test_rules_match_the_mosquitto_acl() -> None:
    gw = "hexiao-gateway"
    assert allowed("d1", gw, P + "d1/scan", "publish")
    assert allowed("d1", gw, P + "d1/status", "publish")
    assert not allowed("d1", gw, P + "d2/scan", "publish")
    assert not allowed("d1", gw, P + "d1/verdict", "publish")
    assert allowed("d1", gw, P + "d1/verdict", "subscribe")
    assert allowed("d1", gw, P + "d1/cmd", "receive")
    assert not allowed("d1", gw, P + "+/verdict", "subscribe")
    assert not allowed("d1", gw, "#", "subscribe")
    assert not allowed("d1", gw, P + "d2/cmd", "receive")
    assert allowed(gw, gw, P + "+/scan", "subscribe") and allowed(gw, gw, P + "d2/cmd", "publish")
    assert not allowed(None, gw, P + "d1/scan", "publish")
    # Camera boards: own frames out, own hints in, nobody else's.
    assert allowed("d1", gw, P + "d1/frame", "publish") and allowed("d1", gw, P + "d1/hint", "subscribe")
    assert not allowed("d1", gw, P + "d2/frame", "publish") and not allowed(
        "d1", gw, P + "d2/hint", "receive"
    )
    assert not allowed("d1", gw, P + "d1/hint", "publish")


class Demo(CredentialBroker):
    def __init__(self, tmp: Path) -> None:
        super().__init__(
            tmp,
            lambda auth: DemoBroker(
                free_port(), password_file=auth.password_file, gateway_user="hexiao-gateway"
            ),
        )


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    d = Demo(tmp_path)
    try:
        yield d
    finally:
        d.close()


def test_demo_broker_logins_and_isolation(demo: Demo) -> None:
    sa, _, _ = demo.creds.issue("dev-a")
    sb, _, _ = demo.creds.issue("dev-b")
    assert demo.client(None, None, "anon").wait_refused()
    assert demo.client("dev-a", "wrong").wait_refused()
    gw = demo.client(demo.auth.gateway_user, demo.auth.gateway_secret)
    gw.wait_connected()
    gw.subscribe(P + "+/scan")
    a = demo.client("dev-a", sa)
    b = demo.client("dev-b", sb)
    a.wait_connected()
    b.wait_connected()
    b.subscribe(P + "dev-b/verdict")
    a.subscribe(P + "dev-b/verdict")
    a.subscribe(P + "+/verdict")
    a.subscribe(P + "dev-a/verdict")

    a.publish(P + "dev-b/scan", json.dumps({"v": 1, "sid": "forged"}))
    a.publish(P + "dev-a/scan", json.dumps({"v": 1, "sid": "honest"}))
    wait_for(lambda: gw.got(P + "dev-a/scan"), 10, "dev-a's scan at the gateway")
    assert gw.got(P + "dev-b/scan") == []

    gw.publish(P + "dev-b/verdict", '{"sid":"for-b"}')
    gw.publish(P + "dev-a/verdict", '{"sid":"for-a"}')
    wait_for(lambda: a.got(P + "dev-a/verdict"), 10, "dev-a's verdict")
    wait_for(lambda: b.got(P + "dev-b/verdict"), 10, "dev-b's verdict")
    assert all(t == P + "dev-a/verdict" for t, _ in a.messages), a.messages

    # Revocation drops the device and refuses it.
    demo.creds.revoke("dev-a")
    wait_for(lambda: a.disconnects, 10, "revoked device dropped")
    a.wait_refused()
    assert b.disconnects == []

    # Someone with dev-b's login but another client id, or dev-a's login with dev-b's id, is refused
    # and reads nothing. (amqtt drops the old session of a client id before authenticating, so on this
    # demo broker such an attempt can disconnect dev-b; Mosquitto, the default, does not.)
    thief = demo.client("dev-b", sb, client_id="not-dev-b")
    thief.wait_refused()
    thief2 = demo.client("dev-a", sa, client_id="dev-b")
    thief2.wait_refused()
    gw.publish(P + "dev-b/verdict", '{"sid":"after"}')
    gw.publish(P + "dev-b/cmd", '{"cmd":"beep"}')
    assert thief.messages == [] and thief2.messages == []
