# The composition root never puts the in-process demo broker (no TLS) on the LAN.
from __future__ import annotations

from pathlib import Path

import pytest

from gateway import bootstrap
from gateway.config import Settings
from gateway.domain.errors import ConfigError


def test_no_mosquitto_means_no_lan_broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bootstrap, "find_mosquitto", lambda: None)
    monkeypatch.delenv("MQTT_URL", raising=False)
    monkeypatch.delenv("DEVICE_AUTH", raising=False)
    settings = Settings(var_dir=tmp_path, broker_bind="0.0.0.0")  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="need Mosquitto"):
        bootstrap.start_broker(settings)
