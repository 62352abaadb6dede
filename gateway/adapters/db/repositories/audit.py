# The audit repository: the SQL behind services.ports.audit.Audit.
from __future__ import annotations

from sqlalchemy import Connection, insert, select

from gateway.adapters.db.models import Audit


class SqlAudit:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add(
        self,
        at: float,
        actor: str,
        action: str,
        reason: str = "",
        order_id: int | None = None,
        redemption_id: int | None = None,
        units: int = 0,
    ) -> None:
        self.conn.execute(
            insert(Audit).values(
                at=at,
                actor=actor,
                action=action,
                reason=reason,
                order_id=order_id,
                redemption_id=redemption_id,
                units=units,
            )
        )

    def recorded(self, action: str, actor: str, reason_prefix: str) -> bool:
        hit = self.conn.execute(
            select(Audit.id).where(
                Audit.action == action,
                Audit.actor == actor,
                Audit.reason.startswith(reason_prefix, autoescape=True),
            )
        ).first()
        return hit is not None
