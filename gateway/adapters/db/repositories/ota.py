# The OTA service's store in SQL (services/ota.py OtaStore): bundles, their files, roll-outs, update alarms.
from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.adapters.db.engine import writer
from gateway.adapters.db.models import (
    Audit,
    Device,
    DeviceAlarm,
    DeviceCredential,
    OtaBundle,
    OtaFile,
    OtaRollout,
    Site,
)
from gateway.domain import ota

ALARM_KIND = "ota"  # in device_alarms beside the inactivity alarms (`silent`): the fleet's one alarm list


class SqlOtaStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add_bundle(self, m: ota.Manifest, files: dict[str, bytes], at: float, by: str) -> bool:
        try:
            with self.engine.connect() as c, writer(c).begin():
                c.execute(
                    insert(OtaBundle).values(
                        version=m.version,
                        manifest=m.raw,
                        files=len(files),
                        size=m.total,
                        uploaded_at=at,
                        uploaded_by=by[:64],
                    )
                )
                c.execute(
                    insert(OtaFile), [{"version": m.version, "path": p, "data": d} for p, d in files.items()]
                )
                reason = f"firmware bundle {m.version}: {len(files)} files, {m.total} bytes"
                c.execute(insert(Audit).values(at=at, actor=by[:64], action="ota_upload", reason=reason))
        except IntegrityError:
            return False
        return True

    def bundles(self) -> list[dict[str, Any]]:
        q = select(
            OtaBundle.version, OtaBundle.files, OtaBundle.size, OtaBundle.uploaded_at, OtaBundle.uploaded_by
        )
        with self.engine.connect() as c:
            rows = c.execute(q.order_by(OtaBundle.id.desc())).all()
        return [
            {"version": v, "files": f, "size": s, "uploaded_at": at, "uploaded_by": by}
            for v, f, s, at, by in rows
        ]

    def manifest(self, version: str) -> bytes | None:
        with self.engine.connect() as c:
            raw = c.execute(select(OtaBundle.manifest).where(OtaBundle.version == version)).scalar()
        return bytes(raw) if raw is not None else None

    def files(self, version: str) -> dict[str, bytes]:
        with self.engine.connect() as c:
            rows = c.execute(select(OtaFile.path, OtaFile.data).where(OtaFile.version == version)).all()
        return {p: bytes(d) for p, d in rows}

    def targets(self, device: str | None, site: str | None) -> list[tuple[str, str | None]]:
        revoked = select(DeviceCredential.device_id).where(DeviceCredential.revoked_at.is_not(None))
        q = (
            select(Device.device_id, Site.slug)
            .outerjoin(Site, Site.id == Device.site_id)
            .where(Device.device_id.not_in(revoked))
        )
        if device is not None:
            q = q.where(Device.device_id == device)
        if site is not None:
            q = q.where(Site.slug == site)
        with self.engine.connect() as c:
            return [(d, s) for d, s in c.execute(q.order_by(Device.device_id)).all()]

    def start(self, devices: list[str], version: str, at: float, by: str) -> None:
        with self.engine.connect() as c, writer(c).begin():
            c.execute(delete(OtaRollout).where(OtaRollout.device_id.in_(devices)))
            c.execute(
                insert(OtaRollout),
                [
                    {
                        "device_id": d,
                        "version": version,
                        "state": ota.PENDING,
                        "done": 0,
                        "total": 0,
                        "detail": "",
                        "created_at": at,
                        "created_by": by[:64],
                        "updated_at": at,
                    }
                    for d in devices
                ],
            )
            c.execute(
                update(DeviceAlarm)
                .where(
                    DeviceAlarm.device_id.in_(devices),
                    DeviceAlarm.kind == ALARM_KIND,
                    DeviceAlarm.cleared_at.is_(None),
                )
                .values(cleared_at=at)
            )
            who = devices[0] if len(devices) == 1 else f"{len(devices)} devices"
            reason = f"roll out {version} to {who}"[:200]
            c.execute(insert(Audit).values(at=at, actor=by[:64], action="ota_rollout", reason=reason))

    def current(self, device: str) -> ota.Rollout | None:
        cols = (OtaRollout.version, OtaRollout.state, OtaRollout.done, OtaRollout.total, OtaRollout.detail)
        with self.engine.connect() as c:
            row = c.execute(select(*cols).where(OtaRollout.device_id == device)).first()
        return None if row is None else ota.Rollout(device, row[0], row[1], row[2], row[3], row[4])

    def record(self, device: str, version: str, p: ota.Progress, at: float) -> None:
        with self.engine.connect() as c, writer(c).begin():
            res = c.execute(
                update(OtaRollout)
                .where(
                    OtaRollout.device_id == device,
                    OtaRollout.version == version,  # the roll-out read, not one started since
                    OtaRollout.state.not_in(ota.TERMINAL),
                )
                .values(state=p.state, done=p.done, total=p.total, detail=p.detail[:200], updated_at=at)
            )
            if res.rowcount and p.state in ota.ALARMING:
                c.execute(
                    insert(DeviceAlarm).values(device_id=device, kind=ALARM_KIND, opened_at=at, last_seen=at)
                )
                reason = f"update of {device} {p.state}: {p.detail}"[:200]
                c.execute(
                    insert(Audit).values(at=at, actor=device, action=f"ota_{p.state}"[:16], reason=reason)
                )

    def view(self, site: str | None) -> list[dict[str, Any]]:
        q = (
            select(
                Device.device_id,
                Site.slug,
                Device.online,
                Device.status,
                OtaRollout.version,
                OtaRollout.state,
                OtaRollout.done,
                OtaRollout.total,
                OtaRollout.detail,
                OtaRollout.updated_at,
            )
            .outerjoin(Site, Site.id == Device.site_id)
            .outerjoin(OtaRollout, OtaRollout.device_id == Device.device_id)
        )
        if site is not None:
            q = q.where(Site.slug == site)
        with self.engine.connect() as c:
            rows = c.execute(q.order_by(Device.device_id)).all()
        out = []
        for d, s, online, status, ver, state, done, total, detail, at in rows:
            fw = status.get("fw") if isinstance(status, dict) else None
            rollout = None
            if ver is not None:
                rollout = {
                    "version": ver,
                    "state": state,
                    "done": done,
                    "total": total,
                    "detail": detail,
                    "at": at,
                }
            out.append({"device": d, "site": s, "online": bool(online), "fw": fw, "rollout": rollout})
        return out

    def alarms(self) -> int:
        with self.engine.connect() as c:
            n = c.execute(
                select(func.count())
                .select_from(DeviceAlarm)
                .where(DeviceAlarm.kind == ALARM_KIND, DeviceAlarm.cleared_at.is_(None))
            ).scalar()
        return int(n or 0)
