# The same per-device rules as our Mosquitto ACL, as amqtt plugins for the demo broker (no Mosquitto).
from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin

from gateway.adapters.mqtt.contract import GATEWAY_STATUS_TOPIC, TOPIC_PREFIX
from gateway.domain.device_secrets import verify_secret


class Logins:
    """Usernames and `$7$` hashes read from the password file the gateway writes for Mosquitto."""

    def __init__(self, password_file: Path, gateway_user: str) -> None:
        self.password_file = password_file
        self.gateway_user = gateway_user
        self._hashes: dict[str, str] = {}
        self._lock = threading.Lock()
        self.load()

    def load(self) -> None:
        hashes: dict[str, str] = {}
        if self.password_file.exists():
            for line in self.password_file.read_text().splitlines():
                user, sep, hashed = line.partition(":")
                if sep and user:
                    hashes[user] = hashed
        with self._lock:
            self._hashes = hashes

    def known(self, user: str) -> bool:
        with self._lock:
            return user in self._hashes

    def check(self, user: str | None, password: str | None) -> bool:
        if not user or password is None:
            return False
        with self._lock:
            hashed = self._hashes.get(user)
        return hashed is not None and verify_secret(password, hashed)


def allowed(user: str | None, gateway_user: str, topic: str, action: str) -> bool:
    """Mosquitto's `pattern` rules with %u, for one publish/subscribe/receive. Wildcards are refused
    for devices: a device subscribes to exactly its two topics."""
    if not user:
        return False
    if user == gateway_user:
        return topic.startswith(TOPIC_PREFIX) or topic == GATEWAY_STATUS_TOPIC
    mine = TOPIC_PREFIX + user + "/"
    if action == "publish":
        return topic in (mine + "scan", mine + "status", mine + "frame", mine + "otareq")
    if action in ("subscribe", "receive"):
        return topic in (mine + "verdict", mine + "cmd", mine + "hint", mine + "ota", GATEWAY_STATUS_TOPIC)
    return False


class DeviceLoginPlugin(BaseAuthPlugin):  # type: ignore[misc]  # amqtt ships no type hints we use
    """Known username, right password, and the client id must equal the username."""

    @dataclass
    class Config:
        logins: Any = None

    async def authenticate(self, *, session: Any) -> bool:
        logins: Logins = self.config.logins
        ok = bool(session.username) and session.client_id == session.username
        ok = ok and logins.check(session.username, session.password)
        if not ok and getattr(session, "parent", 0) == 0:
            # amqtt takes over a live session with the same client id before it acts on a refused
            # login; a random id on the (new) session keeps a refused client from kicking that device.
            # Limit: with clean_session amqtt has already dropped the old session of that id before any
            # plugin runs, so on this demo broker a stranger can disconnect (never impersonate) a device.
            session.client_id = "refused-" + secrets.token_hex(8)
        return ok


class DeviceTopicPlugin(BaseTopicPlugin):  # type: ignore[misc]
    @dataclass
    class Config:
        logins: Any = None

    async def topic_filtering(
        self, *, session: Any = None, topic: str | None = None, action: Any = None
    ) -> bool:
        logins: Logins = self.config.logins
        user = session.username if session is not None else None
        return allowed(user, logins.gateway_user, topic or "", str(action.value if action else ""))


def plugin_config(logins: Logins) -> dict[str, Any]:
    """The `plugins` section of an amqtt broker config enforcing these rules."""
    return {
        f"{__name__}.DeviceLoginPlugin": {"logins": logins},
        f"{__name__}.DeviceTopicPlugin": {"logins": logins},
    }
