# Connects the service to the broker with paho-mqtt: callbacks only hand messages over; verdicts go out QoS 1.
from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.adapters.mqtt.contract import (
    GATEWAY_OFFLINE,
    GATEWAY_STATUS_TOPIC,
    PRESENCE_EVERY_S,
    TOPIC_PREFIX,
    WORKER_STATUS_PREFIX,
    gateway_online,
)
from gateway.adapters.mqtt.watch import Watch
from gateway.adapters.mqtt.workers import Peers, shared

log = logging.getLogger(__name__)
SESSION_EXPIRY_S = 300

# Camera frames at QoS 0: a lost frame is only one of a burst, and none may wait in the broker for a
# restarting gateway (a stale frame must not redeem minutes later).
SUBSCRIPTIONS = [
    (TOPIC_PREFIX + "+/scan", 1),
    (TOPIC_PREFIX + "+/status", 1),
    (TOPIC_PREFIX + "+/frame", 0),
    (TOPIC_PREFIX + "+/otareq", 1),  # a device's request for an update chunk (services/ota.py)
    # Only to find retained commands and clear them (see _on_message); our own commands echo back too.
    (TOPIC_PREFIX + "+/cmd", 0),
]


class MqttBridge:
    """One paho client: persistent session, TCP_NODELAY, auto-reconnect, an unbounded outgoing backlog.

    Why an unbounded backlog: a verdict that does not fit in the broker's inflight window must wait,
    never be dropped (paho queues it and sends it as PUBACKs free the window). Memory stays bounded in
    practice because verdicts are produced only as fast as scans arrive.
    """

    def __init__(
        self,
        url: str,
        on_message: Callable[[str, bytes, Callable[[], None]], None],
        client_id: str = "hexiao-gateway",
        username: str = "",
        password: str = "",
        worker: str = "",
        share_group: str = "",
    ) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 1883
        self.handler = on_message
        self.connected = threading.Event()
        self._stopping = threading.Event()
        self._presence: threading.Thread | None = None
        self.connects = 0
        # Several workers (docs/scaling.md): each its own client id and session, the scans split by the
        # broker through MQTT 5 shared subscriptions, presence per worker (adapters/mqtt/workers.py).
        self.worker = worker
        self.peers = Peers(worker) if worker else None
        self.subscriptions = shared(SUBSCRIPTIONS, share_group) if worker else SUBSCRIPTIONS
        if worker:
            self.client = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=f"{client_id}-{worker}", protocol=mqtt.MQTTv5
            )
        else:
            self.client = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=client_id,
                clean_session=False,
                protocol=mqtt.MQTTv311,
            )
        user = username or (parts.username or "")
        if user:
            self.client.username_pw_set(user, password or parts.password or "")
        # Several workers: the devices' presence goes offline when the last one dies (adapters/mqtt/watch.py).
        self.watch = (
            Watch(self.host, self.port, client_id, worker, user, password or parts.password or "")
            if worker
            else None
        )
        # Acknowledge a scan only once its verdict is committed (the service calls `ack`): a crash
        # before that leaves it with the broker, which redelivers it to our persistent session. The
        # broker's inflight window then also bounds how much is queued in the gateway.
        self.client.manual_ack_set(True)
        if self.peers is not None:
            self.client.will_set(self.peers.topic, GATEWAY_OFFLINE, qos=1, retain=True)
        else:
            self.client.will_set(GATEWAY_STATUS_TOPIC, GATEWAY_OFFLINE, qos=1, retain=True)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_socket_open = self._on_socket_open

    # paho's network thread calls these; they only record state or hand the message over.
    def _on_socket_open(self, client: Any, userdata: Any, sock: Any) -> None:
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            log.error("broker refused the gateway: %s", reason)
            return
        self.connects += 1
        # Healthy only once the broker has acknowledged the subscriptions: before that, a scan could be
        # published with nobody subscribed (a clean first start has no persistent session yet).
        client.subscribe(self.subscriptions)
        log.info("connected to broker %s:%d", self.host, self.port)

    def _on_subscribe(self, client: Any, userdata: Any, mid: Any, reasons: Any, props: Any) -> None:
        if any(getattr(r, "is_failure", False) for r in reasons):
            log.error("broker refused the gateway's subscriptions: %s", reasons)
            return
        # Only now can scans be answered: tell the devices (retained; the will says offline).
        self._announce()
        self.connected.set()

    def _announce(self) -> None:
        # Retained, so a device connecting later gets it; refreshed every PRESENCE_EVERY_S so that its
        # `t` (the devices' clock: they have no NTP of their own) is never older than that.
        online = gateway_online(time.time())
        if self.peers is not None and self.watch is not None:
            # The worker's own presence names its watch connection, for the peers to cancel its will.
            mine = gateway_online(time.time(), watch=self.watch.client_id_of_watch)
            self.client.publish(self.peers.topic, mine, qos=1, retain=True)
        self.client.publish(GATEWAY_STATUS_TOPIC, online, qos=1, retain=True)

    def _refresh_presence(self) -> None:
        while not self._stopping.wait(PRESENCE_EVERY_S):
            if self.connected.is_set():
                self._announce()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        self.connected.clear()
        log.warning("disconnected from broker (%s); reconnecting", reason)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        mid, qos = msg.mid, msg.qos

        def ack() -> None:
            if qos:
                client.ack(mid, qos)

        if self.peers is not None and msg.topic.startswith(WORKER_STATUS_PREFIX):
            gone = self.peers.seen(msg.topic, msg.payload)
            if gone is not None and self.watch is not None:
                self.watch.peer_down(gone)
            return
        if msg.topic.endswith("/cmd"):
            if msg.retain and msg.payload:
                # Commands are never retained: one that is was planted (e.g. on an older, anonymous
                # broker whose persistence we kept) and would reboot its device at every connect.
                log.warning("cleared a retained command on %s", msg.topic)
                client.publish(msg.topic, b"", qos=1, retain=True)
            ack()
            return
        self.handler(msg.topic, msg.payload, ack)

    def publish(self, topic: str, payload: str | bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain)

    def start(self) -> None:
        if self.peers is not None:
            # A worker restarted under the same WORKER_ID within the expiry gets its unacknowledged
            # scans back; one that never returns leaves them to the devices, which send them again.
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = SESSION_EXPIRY_S
            self.client.connect_async(self.host, self.port, keepalive=30, clean_start=False, properties=props)
        else:
            self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        if self.watch is not None:
            self.watch.start()
        self._stopping.clear()
        self._presence = threading.Thread(target=self._refresh_presence, name="mqtt-presence", daemon=True)
        self._presence.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._presence is not None:
            self._presence.join(5)
        # A clean DISCONNECT suppresses the will, so say "offline" ourselves before leaving; the devices'
        # topic only when no other worker still serves.
        if self.connected.is_set():
            topics = [GATEWAY_STATUS_TOPIC]
            if self.peers is not None:
                topics = [self.peers.topic] + ([] if self.peers.others_online() else topics)
            for topic in topics:
                info = self.client.publish(topic, GATEWAY_OFFLINE, qos=1, retain=True)
                with contextlib.suppress(Exception):
                    info.wait_for_publish(2)
        if self.watch is not None:
            self.watch.stop()
        self.client.disconnect()
        self.client.loop_stop()

    def health(self) -> dict[str, Any]:
        return {
            "connected": self.connected.is_set(),
            "broker": f"{self.host}:{self.port}",
            "connects": self.connects,
            "backlog": len(getattr(self.client, "_out_messages", {})),
        }
