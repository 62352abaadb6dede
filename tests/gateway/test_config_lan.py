# Settings for a broker on the LAN: logins are never off there, demo or not, and a clear refusal otherwise.
from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.config import Settings, is_loopback


def settings(**env: str) -> Settings:
    return Settings(_env_file=None, **env)  # type: ignore[call-arg, arg-type]


def test_loopback_addresses() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.1.2.3", "::1", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "::", "", "192.168.1.2", "gw.local"]))


@pytest.mark.parametrize("demo", [True, False])
def test_lan_broker_always_checks_logins(demo: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("DEVICE_AUTH", "BROKER_BIND", "MQTT_URL", "DEMO"):
        monkeypatch.delenv(var, raising=False)
    lan = settings(broker_bind="0.0.0.0", demo=demo)
    assert lan.lan_broker and lan.fleet.auth_wanted(lan.demo, lan.lan_broker)
    local = settings(demo=demo)
    assert not local.lan_broker
    assert local.fleet.auth_wanted(local.demo, local.lan_broker) is (not demo)  # loopback demo: open


def test_lan_broker_without_logins_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVICE_AUTH", "false")
    monkeypatch.delenv("MQTT_URL", raising=False)
    with pytest.raises(ValidationError, match="per-device logins are required"):
        settings(broker_bind="0.0.0.0")
    with pytest.raises(ValidationError, match="per-device logins are required"):
        settings(broker_bind="192.168.1.20")
    assert settings(broker_bind="127.0.0.1").fleet.device_auth == "false"  # loopback: allowed
    monkeypatch.delenv("DEVICE_AUTH")
    with pytest.raises(ValidationError, match="BROKER_TLS_PORT must differ"):
        settings(broker_bind="0.0.0.0", broker_port=8883)


def test_plaintext_external_broker_on_the_network_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plaintext MQTT only on loopback: the gateway speaks plaintext, so an external broker must be local."""
    for var in ("DEVICE_AUTH", "BROKER_BIND", "MQTT_URL", "DEMO"):
        monkeypatch.delenv(var, raising=False)
    for url in ("mqtt://192.168.1.20:1883", "mqtt://broker.shop.lan:1883", "tcp://10.0.0.5"):
        with pytest.raises(ValidationError, match="a broker on the network"):
            settings(mqtt_url=url)
    local = settings(mqtt_url="mqtt://127.0.0.1:1883", demo=True)
    assert not local.demo_codes_valid  # an external broker: who reaches it is not ours to know
    assert settings(demo=True).demo_codes_valid and not settings(broker_bind="0.0.0.0").demo_codes_valid
