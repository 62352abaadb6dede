# Per-device MQTT security: issue/rotate/revoke credentials, keep the broker's files in step, reload it.
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from gateway.domain.device_secrets import hash_secret, new_secret
from gateway.domain.errors import Conflict, NotFound, ValidationFailed
from gateway.domain.identifiers import DEVICE_RE, reserved_device
from gateway.services.ports.database import Database

log = logging.getLogger(__name__)


class DeviceAuth(Protocol):
    """The broker's login files as the credentials need them (adapters/mqtt/acl.py implements it).

    `enforced` is True when the gateway runs the broker itself and can reload it; with an external
    broker the files are still kept up to date for the operator to point that broker at.
    """

    gateway_user: str
    gateway_secret: str
    enforced: bool

    def write(self, logins: list[tuple[str, str]]) -> None:
        """Rewrite the broker's password file for these (username, secret hash) and the ACL file."""


class Credentials:
    """Owns the `device_credentials` table and the broker files generated from it.

    Why regenerate whole files rather than edit lines: the database is the only truth, the files are a
    cache of it, and a full rewrite plus SIGHUP is cheap (Mosquitto re-reads both files and disconnects
    any connected client whose login is no longer valid — checked against Mosquitto 2.0 in the tests).
    """

    def __init__(
        self,
        db: Database,
        auth: DeviceAuth | None,
        reload: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.auth = auth
        self.reload = reload
        self.clock = clock
        self._lock = threading.Lock()  # one file rewrite at a time

    def check_name(self, device: str) -> None:
        if not DEVICE_RE.match(device):
            raise ValidationFailed("device ids are 1-32 characters of A-Z a-z 0-9 _ -", field="device")
        if reserved_device(device):
            raise ValidationFailed(f"{device!r} is reserved for the gateway's own actors", field="device")
        if self.auth is not None and device == self.auth.gateway_user:
            raise Conflict(f"{device!r} is the gateway's own MQTT username", field="device")

    def issue(self, device: str, board: str = "") -> tuple[str, int, bool]:
        """A new secret for `device` (rotating any old one, lifting a revocation): (secret, generation,
        rotated). The old secret stops working as soon as the broker has reloaded."""
        self.check_name(device)
        secret = new_secret()
        hashed = hash_secret(secret)
        now = self.clock()
        with self.db.write() as tx:
            row = tx.credentials.current(device)
            if row is None:
                tx.credentials.add(device, hashed, board, now)
                generation, rotated = 1, False
            else:
                generation, rotated = row[0] + 1, True
                tx.credentials.replace(device, hashed, board or row[1], generation, now)
        self.sync()
        log.info(
            "credentials for %s %s (generation %d)", device, "rotated" if rotated else "issued", generation
        )
        return secret, generation, rotated

    def revoke(self, device: str) -> dict[str, Any]:
        now = self.clock()
        with self.db.write() as tx:
            if not tx.credentials.revoke(device, now):
                known = tx.credentials.revoked_at(device)
                if known is None:
                    raise NotFound(f"device {device!r} has no credentials", device=device)
                return {"device": device, "revoked_at": known[0], "already": True}
        self.sync()
        log.warning("credentials of %s revoked", device)
        return {"device": device, "revoked_at": now, "already": False}

    def state(self, device: str) -> dict[str, Any] | None:
        with self.db.read() as tx:
            return tx.credentials.state(device)

    def sync(self) -> None:
        """Rewrite the password and ACL files from the table and make the broker re-read them."""
        if self.auth is None:
            return
        auth = self.auth
        with self._lock:
            with self.db.read() as tx:
                rows = tx.credentials.live()
            entries = [(d, h) for d, h in rows if d != auth.gateway_user]
            if auth.gateway_secret:
                entries.append((auth.gateway_user, hash_secret(auth.gateway_secret)))
            auth.write(entries)
            if self.reload is not None:
                self.reload()
