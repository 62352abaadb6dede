# Per-device MQTT security: issue/rotate/revoke credentials, keep the broker's files in step, reload it.
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, insert, select, update

from gateway.adapters.db.engine import writer
from gateway.adapters.db.models import DeviceCredential
from gateway.adapters.mqtt.acl import render_acl, render_passwords, write_private
from gateway.adapters.mqtt.contract import DEVICE_RE, reserved_device
from gateway.domain.device_secrets import hash_secret, new_secret
from gateway.domain.errors import Conflict, NotFound, ValidationFailed

log = logging.getLogger(__name__)


@dataclass
class DeviceAuth:
    """Where the broker's files live and the gateway's own login (its secret lives only in memory).

    `enforced` is True when the gateway runs the broker itself and can reload it; with an external
    broker the files are still kept up to date for the operator to point that broker at.
    """

    password_file: Path
    acl_file: Path
    gateway_user: str
    gateway_secret: str
    enforced: bool
    owner: tuple[int, int] | None = None  # (uid, gid) of the broker's user when it is not ours


def make_auth(
    var_dir: Path, gateway_user: str, gateway_secret: str = "", enforced: bool = True
) -> DeviceAuth:
    if not DEVICE_RE.match(gateway_user):
        raise ValidationFailed(f"MQTT_CLIENT_ID {gateway_user!r} is not a valid MQTT username here")
    workdir = Path(var_dir) / "mosquitto"
    return DeviceAuth(
        password_file=workdir / "passwd",
        acl_file=workdir / "acl",
        gateway_user=gateway_user,
        gateway_secret=gateway_secret or new_secret(),
        enforced=enforced,
    )


class Credentials:
    """Owns the `device_credentials` table and the broker files generated from it.

    Why regenerate whole files rather than edit lines: the database is the only truth, the files are a
    cache of it, and a full rewrite plus SIGHUP is cheap (Mosquitto re-reads both files and disconnects
    any connected client whose login is no longer valid — checked against Mosquitto 2.0 in the tests).
    """

    def __init__(
        self,
        engine: Engine,
        auth: DeviceAuth | None,
        reload: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
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
        with self.engine.connect() as c, writer(c).begin():
            row = c.execute(
                select(DeviceCredential.generation, DeviceCredential.board).where(
                    DeviceCredential.device_id == device
                )
            ).first()
            if row is None:
                c.execute(
                    insert(DeviceCredential).values(
                        device_id=device, secret_hash=hashed, board=board, generation=1, issued_at=now
                    )
                )
                generation, rotated = 1, False
            else:
                generation, rotated = int(row[0]) + 1, True
                c.execute(
                    update(DeviceCredential)
                    .where(DeviceCredential.device_id == device)
                    .values(
                        secret_hash=hashed,
                        board=board or row[1],
                        generation=generation,
                        issued_at=now,
                        revoked_at=None,
                    )
                )
        self.sync()
        log.info(
            "credentials for %s %s (generation %d)", device, "rotated" if rotated else "issued", generation
        )
        return secret, generation, rotated

    def revoke(self, device: str) -> dict[str, Any]:
        now = self.clock()
        with self.engine.connect() as c, writer(c).begin():
            res = c.execute(
                update(DeviceCredential)
                .where(DeviceCredential.device_id == device, DeviceCredential.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            if res.rowcount == 0:
                known = c.execute(
                    select(DeviceCredential.revoked_at).where(DeviceCredential.device_id == device)
                ).first()
                if known is None:
                    raise NotFound(f"device {device!r} has no credentials", device=device)
                return {"device": device, "revoked_at": known[0], "already": True}
        self.sync()
        log.warning("credentials of %s revoked", device)
        return {"device": device, "revoked_at": now, "already": False}

    def state(self, device: str) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            row = c.execute(
                select(
                    DeviceCredential.generation,
                    DeviceCredential.board,
                    DeviceCredential.issued_at,
                    DeviceCredential.revoked_at,
                ).where(DeviceCredential.device_id == device)
            ).first()
        if row is None:
            return None
        return {"generation": row[0], "board": row[1], "issued_at": row[2], "revoked_at": row[3]}

    def sync(self) -> None:
        """Rewrite the password and ACL files from the table and make the broker re-read them."""
        if self.auth is None:
            return
        auth = self.auth
        with self._lock:
            with self.engine.connect() as c:
                rows = c.execute(
                    select(DeviceCredential.device_id, DeviceCredential.secret_hash).where(
                        DeviceCredential.revoked_at.is_(None)
                    )
                ).all()
            entries = [(str(d), str(h)) for d, h in rows if d != auth.gateway_user]
            if auth.gateway_secret:
                entries.append((auth.gateway_user, hash_secret(auth.gateway_secret)))
            write_private(auth.password_file, render_passwords(entries), auth.owner)
            write_private(auth.acl_file, render_acl(auth.gateway_user), auth.owner)
            if self.reload is not None:
                self.reload()
