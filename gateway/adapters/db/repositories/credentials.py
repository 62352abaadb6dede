# The device credentials repository: the SQL behind services.ports.credentials.Credentials.
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select, update

from gateway.adapters.db.models import DeviceCredential as Cred


class SqlCredentials:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def current(self, device: str) -> tuple[int, str] | None:
        row = self.conn.execute(select(Cred.generation, Cred.board).where(Cred.device_id == device)).first()
        return None if row is None else (int(row[0]), row[1])

    def add(self, device: str, secret_hash: str, board: str, now: float) -> None:
        self.conn.execute(
            insert(Cred).values(
                device_id=device, secret_hash=secret_hash, board=board, generation=1, issued_at=now
            )
        )

    def replace(self, device: str, secret_hash: str, board: str, generation: int, now: float) -> None:
        self.conn.execute(
            update(Cred)
            .where(Cred.device_id == device)
            .values(
                secret_hash=secret_hash, board=board, generation=generation, issued_at=now, revoked_at=None
            )
        )

    def revoke(self, device: str, now: float) -> bool:
        res = self.conn.execute(
            update(Cred).where(Cred.device_id == device, Cred.revoked_at.is_(None)).values(revoked_at=now)
        )
        return res.rowcount > 0

    def revoked_at(self, device: str) -> tuple[float | None] | None:
        row = self.conn.execute(select(Cred.revoked_at).where(Cred.device_id == device)).first()
        return None if row is None else (row[0],)

    def state(self, device: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            select(Cred.generation, Cred.board, Cred.issued_at, Cred.revoked_at).where(
                Cred.device_id == device
            )
        ).first()
        if row is None:
            return None
        return {"generation": row[0], "board": row[1], "issued_at": row[2], "revoked_at": row[3]}

    def live(self) -> list[tuple[str, str]]:
        rows = self.conn.execute(select(Cred.device_id, Cred.secret_hash).where(Cred.revoked_at.is_(None)))
        return [(str(d), str(h)) for d, h in rows]
