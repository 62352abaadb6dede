# The firmware's MQTT client interface (hx/mqtt.py MQTTClient) over paho-mqtt: the link of the Linux reader.
from __future__ import annotations

import asyncio
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

_POLL_S = 0.01  # how often a waiting publish looks whether its PUBACK came


class PahoLink:
    """What hx.app.App uses of its MQTT client — connected, progress, subs, publish(), run() — with
    paho doing the protocol in its own thread. Built from the client the App made (`like`), so the
    client id, login, last will, keepalive, TLS context (the provisioned CA, hx.mqtt.tls_context) and
    callbacks are exactly the firmware's; paho's callbacks are handed to the event loop.

    Differences from the firmware's client, on purpose: paho keeps an unacknowledged QoS 1 publish and
    resends it itself after a reconnect (the outbox resends too: the gateway answers a repeated scan id
    with its stored verdict), so publish()'s `key` is not needed; reconnect back-off is paho's."""

    def __init__(self, like: Any) -> None:
        self.client_id = like.client_id
        self.host, self.port, self.keepalive = like.host, like.port, like.keepalive
        self.on_message = like.on_message
        self.on_connect = like.on_connect
        self.log = like.log
        self.tls = like.ssl is not None
        self.subs: dict[str, int] = like.subs  # the App adds to it after building: the same dict
        self.connected = False
        self.progress = time.ticks_ms()  # type: ignore[attr-defined]
        self.loop: asyncio.AbstractEventLoop | None = None
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=True, protocol=mqtt.MQTTv311
        )
        if like.user is not None:
            c.username_pw_set(like.user, like.password)
        if like.will:
            topic, payload, retain = like.will
            c.will_set(topic, payload, qos=1, retain=retain)
        if like.ssl is not None:
            c.tls_set_context(like.ssl)
        c.reconnect_delay_set(like.backoff[0] / 1000, like.backoff[1] / 1000)
        c.on_connect = self._paho_connect
        c.on_disconnect = self._paho_disconnect
        c.on_message = self._paho_message
        self.c = c

    # -- paho's thread: hand everything to the loop ------------------------------------------------
    def _call(self, fn: Any, *args: Any) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(fn, *args)

    def _paho_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        if rc.is_failure:
            self._call(self.log, "mqtt", {"state": "retry", "why": str(rc)})
            return
        if self.subs:
            client.subscribe([(t, q) for t, q in self.subs.items()])  # sent before any publish of ours
        self._call(self._up)

    def _paho_disconnect(self, client: Any, userdata: Any, flags: Any, rc: Any, props: Any = None) -> None:
        self._call(self._down, str(rc))

    def _paho_message(self, client: Any, userdata: Any, msg: Any) -> None:
        if self.on_message is not None:
            self._call(self.on_message, msg.topic, bytes(msg.payload))

    # -- the loop's side ---------------------------------------------------------------------------
    def _up(self) -> None:
        self.connected = True
        self.log("mqtt", {"state": "up", "broker": f"{self.host}:{self.port}", "tls": self.tls})
        if self.on_connect:
            self.on_connect()

    def _down(self, why: str) -> None:
        if self.connected:
            self.log("mqtt", {"state": "down", "why": why})
        self.connected = False

    async def run(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.c.connect_async(self.host, self.port, self.keepalive)
        self.c.loop_start()  # connects, and reconnects forever, in paho's thread
        try:
            while True:
                # paho's thread is the link's progress: while it runs it connects, retries or listens.
                if self.c._thread is not None and self.c._thread.is_alive():
                    self.progress = time.ticks_ms()  # type: ignore[attr-defined]
                await asyncio.sleep(0.25)
        finally:
            self.c.disconnect()
            self.c.loop_stop()

    async def publish(
        self,
        topic: str,
        payload: Any,
        qos: int = 1,
        retain: bool = False,
        timeout_ms: int | None = None,
        key: Any = None,
    ) -> bool:
        """QoS 1: True once PUBACKed, False when not connected or timeout_ms passed first; QoS 0: True
        when handed to a live connection."""
        if not self.connected:
            return False
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return False
        if not qos:
            return True
        deadline = time.monotonic() + (timeout_ms if timeout_ms is not None else 3600000) / 1000
        while not info.is_published():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(_POLL_S)
        return True

    async def disconnect(self) -> None:
        self.c.disconnect()
