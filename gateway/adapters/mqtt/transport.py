# The MQTT device link as the services' ports: read, render and answer scans; command devices.
from __future__ import annotations

from collections.abc import Callable

from gateway.adapters.mqtt.contract import GATEWAY_OFFLINE, cmd_topic, status_topic, verdict_topic
from gateway.adapters.mqtt.inbound import read
from gateway.adapters.mqtt.oled import render
from gateway.domain.verdict import Verdict
from gateway.services.messages import Transport


def mqtt_transport(publish: Callable[[str, str], None]) -> Transport:
    """Ports over a publish function (topic, payload): the bridge's in the gateway, a recorder in tests."""

    def answer(device: str, v: Verdict) -> None:
        publish(verdict_topic(device), v.to_json())

    return Transport(read=read, render=render, answer=answer)


class MqttDeviceLink:
    """The fleet's DeviceLink over a publish function (topic, payload, retain)."""

    def __init__(self, publish: Callable[..., None]) -> None:
        self.publish = publish

    def command(self, device: str, payload: str) -> None:
        self.publish(cmd_topic(device), payload)

    def mark_offline(self, device: str) -> None:
        # The device's offline status document is the same one the gateway's own will carries.
        self.publish(status_topic(device), GATEWAY_OFFLINE, retain=True)
