# Several workers: the devices' gateway presence says "offline" when the last worker dies, never before.
"""Why a second connection per worker: a connection has one will, and each worker's main connection
already uses its will for its own presence topic (adapters/mqtt/workers.py), which is how the others
know it died. The devices' topic (`hx/v1/gateway/status`) needs a will too, or a `kill -9` of the
last worker leaves it saying "online" for good — but a plain will would say "offline" whenever any
worker dies while others still serve.

So each worker keeps a small MQTT 5 "watch" connection whose only content is a *delayed* will:
"offline" on the devices' topic, `WILL_DELAY_S` after the connection is lost. A delayed will is not
sent if a new connection to the same session is made before the delay ends (MQTT 5, 3.1.3.2.2), so a
surviving worker that reads a peer's "offline" connects to that peer's watch session once and ends it
cleanly: the will is cancelled. When no worker survives, nobody cancels it and the devices show
OFFLINE after the delay. A worker that restarts under its name cancels its old will the same way.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from gateway.adapters.mqtt.contract import GATEWAY_OFFLINE, GATEWAY_STATUS_TOPIC

log = logging.getLogger(__name__)
WILL_DELAY_S = 5  # how long a peer has to cancel a dead worker's will (it needs one round trip)
WATCH_EXPIRY_S = 3600  # longer than the delay: the session, not its end, must outlive the delay
# Longer than the main connection's 30 s: a worker whose machine vanishes (no FIN) is then declared
# dead by its main connection's will first, and the peers cancel this one before it is even due.
WATCH_KEEPALIVE_S = 60


def watch_id(client_id: str, worker: str) -> str:
    return f"{client_id}-{worker}-watch"


class Watch:
    """This worker's watch connection, and the cancelling of dead peers' wills."""

    def __init__(
        self, host: str, port: int, client_id: str, worker: str, username: str, password: str
    ) -> None:
        self.host, self.port = host, port
        self.client_id, self.worker = client_id, worker
        self.username, self.password = username, password
        self.client_id_of_watch = watch_id(client_id, worker)
        self.client = self._client(self.client_id_of_watch)
        will = Properties(PacketTypes.WILLMESSAGE)  # type: ignore[no-untyped-call]
        will.WillDelayInterval = WILL_DELAY_S
        self.client.will_set(GATEWAY_STATUS_TOPIC, GATEWAY_OFFLINE, qos=1, retain=True, properties=will)
        self.relieved = 0  # peers' wills cancelled (health, tests)

    def _client(self, cid: str) -> mqtt.Client:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=cid, protocol=mqtt.MQTTv5)
        if self.username:
            c.username_pw_set(self.username, self.password)
        return c

    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = WATCH_EXPIRY_S
        # clean_start False: connecting to our own old session cancels the will a killed run left.
        self.client.connect_async(
            self.host, self.port, keepalive=WATCH_KEEPALIVE_S, clean_start=False, properties=props
        )
        self.client.loop_start()

    def stop(self) -> None:
        """A clean stop: a normal DISCONNECT drops the will (the bridge says "offline" itself when no
        other worker serves), and session expiry 0 ends the session."""
        props = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 0
        self.client.disconnect(properties=props)
        self.client.loop_stop()

    def peer_down(self, peer: str) -> None:
        """A peer's presence said offline (its will, or its clean stop): cancel its watch's will (`peer`
        is the watch's client id, as its presence named it), on a thread of its own — this is called on
        paho's network thread, which must never block."""
        if peer and peer != self.client_id_of_watch:
            threading.Thread(
                target=self._relieve, args=(peer,), name="mqtt-watch-relieve", daemon=True
            ).start()

    def _relieve(self, peer: str) -> None:
        c = self._client(peer)
        done = threading.Event()

        def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
            if not reason.is_failure:
                end = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
                end.SessionExpiryInterval = 0
                client.disconnect(properties=end)
                self.relieved += 1
                log.info("a worker is gone (%s): its presence will is cancelled", peer)
            done.set()

        c.on_connect = on_connect
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 1  # ended right away; nonzero so that it may be set to 0 at the end
        try:
            c.connect(self.host, self.port, keepalive=10, clean_start=False, properties=props)
            c.loop_start()
            if not done.wait(WILL_DELAY_S):
                log.warning("could not reach %s in time: the devices may see OFFLINE", peer)
        except OSError as err:
            log.warning("could not cancel the presence will of %s: %s", peer, err)
        finally:
            c.loop_stop()
