# The devices and alarms repositories: the SQL behind services.ports.devices and services.ports.alarms.
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.adapters.db.models import Device, DeviceAlarm, DeviceCommand, DeviceCredential, Site
from gateway.adapters.db.repositories.sites import site_of
from gateway.services.ports.devices import Report

log = logging.getLogger("gateway.services.places")  # the registration's log line, where it always was
_REVOKED = select(DeviceCredential.device_id).where(DeviceCredential.revoked_at.is_not(None))
# The status writes, executed with many parameter sets at once (executemany): the statement is
# compiled once and the driver runs it per row, instead of one ORM statement per device.
_BY_ID = Device.device_id == bindparam("b_device")
_REPORT = update(Device).where(_BY_ID).values(online=bindparam("b_online"), last_seen=bindparam("b_seen"))
_REPORT_DOC = _REPORT.values(status=bindparam("b_status", type_=Device.status.type))
_CHUNK = 500  # device ids per IN (...) look-up: well below every driver's limit of bound parameters


class SqlDevices:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def place(self, device: str, values: dict[str, Any], now: float) -> None:
        res = self.conn.execute(update(Device).where(Device.device_id == device).values(**values))
        if res.rowcount == 0:
            self.conn.execute(insert(Device).values(device_id=device, online=False, created_at=now, **values))

    def where(self, device: str) -> tuple[int | None, str, str | None, str | None] | None:
        row = self.conn.execute(
            select(Device.site_id, Device.gate, Site.timezone, Device.user)
            .select_from(Device)
            .outerjoin(Site, Site.id == Device.site_id)
            .where(Device.device_id == device)
        ).first()
        return None if row is None else (row.site_id, row.gate, row.timezone, row.user)

    def register(self, device: str, site_id: int | None, now: float) -> None:
        try:
            with self.conn.begin_nested():
                self.conn.execute(
                    insert(Device).values(
                        device_id=device,
                        site_id=site_id,
                        gate=device,
                        mode="handheld",
                        online=False,
                        created_at=now,
                    )
                )
        except IntegrityError:
            log.debug("device %s registered concurrently", device)

    def report(self, device: str, values: dict[str, Any]) -> bool:
        return (
            self.conn.execute(update(Device).where(Device.device_id == device).values(**values)).rowcount > 0
        )

    def report_many(self, reports: Sequence[Report]) -> set[str]:
        ids = [r[0] for r in reports]
        known: set[str] = set()
        for i in range(0, len(ids), _CHUNK):
            chunk = ids[i : i + _CHUNK]
            known.update(
                self.conn.execute(select(Device.device_id).where(Device.device_id.in_(chunk))).scalars()
            )
        plain: list[dict[str, Any]] = []
        with_doc: list[dict[str, Any]] = []
        for device, online, status, seen in reports:
            if device not in known:
                continue
            row: dict[str, Any] = {"b_device": device, "b_online": online, "b_seen": seen}
            if status is None:
                plain.append(row)
            else:
                row["b_status"] = status
                with_doc.append(row)
        if plain:
            self.conn.execute(_REPORT, plain)
        if with_doc:
            self.conn.execute(_REPORT_DOC, with_doc)
        return set(ids) - known

    def sign(self, device: str, user: str | None) -> None:
        self.conn.execute(update(Device).where(Device.device_id == device).values(user=user))

    def signed_in(self, device: str) -> str | None:
        user: str | None = self.conn.execute(select(Device.user).where(Device.device_id == device)).scalar()
        return user

    def site_of(self, device: str) -> tuple[bool, str | None]:
        return site_of(self.conn, Device.site_id, Device.device_id == device)

    def exists(self, device: str) -> bool:
        return self.conn.execute(select(Device.id).where(Device.device_id == device)).first() is not None

    def set_mode(self, device: str, mode: str) -> None:
        self.conn.execute(update(Device).where(Device.device_id == device).values(mode=mode))

    def at_site(self, site_id: int) -> list[str]:
        return list(
            self.conn.execute(
                select(Device.device_id)
                .where(Device.site_id == site_id, Device.device_id.not_in(_REVOKED))
                .order_by(Device.device_id)
            ).scalars()
        )

    def last_seen(self) -> dict[str, float | None]:
        rows = self.conn.execute(
            select(Device.device_id, Device.last_seen).where(Device.device_id.not_in(_REVOKED))
        )
        return {d: t for d, t in rows}

    def listing(self, site: str | None = None, device: str | None = None) -> list[tuple[Any, ...]]:
        q = (
            select(
                Device.device_id,
                Site.slug,
                Device.gate,
                Device.mode,
                Device.online,
                Device.last_seen,
                Device.status,
                DeviceCredential.board,
                DeviceCredential.generation,
                DeviceCredential.revoked_at,
            )
            .outerjoin_from(Device, Site, Site.id == Device.site_id)
            .outerjoin(DeviceCredential, DeviceCredential.device_id == Device.device_id)
            .order_by(Device.device_id)
        )
        if site is not None:
            q = q.where(Site.slug == site)
        if device is not None:
            q = q.where(Device.device_id == device)
        return [tuple(r) for r in self.conn.execute(q)]

    def record_command(
        self, device: str, cmd: str, args: dict[str, Any] | None, source: str, at: float
    ) -> None:
        self.conn.execute(
            insert(DeviceCommand).values(device_id=device, cmd=cmd, args=args, source=source, sent_at=at)
        )

    def commands(self, device: str, limit: int) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            select(DeviceCommand.cmd, DeviceCommand.args, DeviceCommand.source, DeviceCommand.sent_at)
            .where(DeviceCommand.device_id == device)
            .order_by(DeviceCommand.id.desc())
            .limit(limit)
        ).all()
        return [{"cmd": r[0], "args": r[1], "source": r[2], "sent_at": r[3]} for r in rows]


class SqlAlarms:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def open_devices(self, kind: str | None = None) -> set[str]:
        q = select(DeviceAlarm.device_id).where(DeviceAlarm.cleared_at.is_(None))
        if kind is not None:
            q = q.where(DeviceAlarm.kind == kind)
        return set(self.conn.execute(q).scalars())

    def open(self, device: str, kind: str, now: float, last_seen: float | None) -> None:
        self.conn.execute(
            insert(DeviceAlarm).values(device_id=device, kind=kind, opened_at=now, last_seen=last_seen)
        )

    def seen(self, device: str, kind: str, now: float) -> bool:
        res = self.conn.execute(
            update(DeviceAlarm)
            .where(
                DeviceAlarm.device_id == device, DeviceAlarm.kind == kind, DeviceAlarm.cleared_at.is_(None)
            )
            .values(last_seen=now)
        )
        return bool(res.rowcount)

    def clear(self, devices: list[str], kind: str, now: float) -> None:
        self.conn.execute(
            update(DeviceAlarm)
            .where(
                DeviceAlarm.device_id.in_(devices), DeviceAlarm.kind == kind, DeviceAlarm.cleared_at.is_(None)
            )
            .values(cleared_at=now)
        )

    def clear_stale(self, kind: str, last_seen_before: float, now: float) -> None:
        self.conn.execute(
            update(DeviceAlarm)
            .where(
                DeviceAlarm.kind == kind,
                DeviceAlarm.cleared_at.is_(None),
                DeviceAlarm.last_seen < last_seen_before,
            )
            .values(cleared_at=now)
        )

    def listing(self, include_cleared: bool, limit: int) -> list[dict[str, Any]]:
        q = select(
            DeviceAlarm.device_id,
            DeviceAlarm.kind,
            DeviceAlarm.opened_at,
            DeviceAlarm.last_seen,
            DeviceAlarm.cleared_at,
        ).order_by(DeviceAlarm.id.desc())
        if not include_cleared:
            q = q.where(DeviceAlarm.cleared_at.is_(None))
        rows = self.conn.execute(q.limit(limit)).all()
        return [
            {"device": d, "kind": k, "opened_at": o, "last_seen": ls, "cleared_at": cl}
            for d, k, o, ls, cl in rows
        ]
