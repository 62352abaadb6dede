# Several gateway workers on one broker: shared subscriptions, and who else is serving (their presence).
from __future__ import annotations

import json
import threading

from gateway.adapters.mqtt.contract import WORKER_STATUS_PREFIX


def shared(subscriptions: list[tuple[str, int]], group: str) -> list[tuple[str, int]]:
    """The subscriptions as one MQTT 5 shared group: the broker gives each scan to one worker.

    Commands stay per worker: each worker only looks for retained ones to clear (bridge._on_message).
    The workers' presence topics are read by all, to know whether another one still serves.
    """
    out = [(t if t.endswith("/cmd") else f"$share/{group}/{t}", q) for t, q in subscriptions]
    return [*out, (WORKER_STATUS_PREFIX + "+", 1)]


class Peers:
    """The workers' retained presence as this worker last heard it (paho's thread writes, stop reads)."""

    def __init__(self, worker: str) -> None:
        self.topic = WORKER_STATUS_PREFIX + worker
        self._online: set[str] = set()
        self._watch: dict[str, str] = {}  # topic -> the client id of that worker's watch connection
        self._lock = threading.Lock()

    def seen(self, topic: str, payload: bytes) -> str | None:
        """Record a worker's presence. When it says the worker is gone, the client id of the watch
        connection it announced while online (adapters/mqtt/watch.py), if one was heard."""
        try:
            doc = json.loads(payload)
            up = doc.get("state") == "online"
            watch = doc.get("watch") if up else None
        except (ValueError, AttributeError):
            up, watch = False, None  # a cleared (empty) or unreadable presence is nobody serving
        with self._lock:
            if up:
                self._online.add(topic)
                if isinstance(watch, str) and watch:
                    self._watch[topic] = watch
                return None
            self._online.discard(topic)
            return None if topic == self.topic else self._watch.pop(topic, None)

    def others_online(self) -> bool:
        """Whether another worker's last word was online (a crashed one's will has said offline)."""
        with self._lock:
            return bool(self._online - {self.topic})
