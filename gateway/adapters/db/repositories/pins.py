# The verifier PINs repository: the SQL behind services.ports.pins.Pins.
from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select, update

from gateway.adapters.db.models import VerifierPin
from gateway.domain.pins import PinRow

_ROW = (VerifierPin.id, VerifierPin.user, VerifierPin.pin_hash, VerifierPin.pin_digest, VerifierPin.pin_index)


class SqlPins:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def at_site(self, site_id: int, index: str | None = None) -> list[PinRow]:
        q = select(*_ROW).where(VerifierPin.site_id == site_id)
        # The indexed row, and rows from before the index (none once each has signed in once).
        q = q.where((VerifierPin.pin_index == index) | VerifierPin.pin_index.is_(None)) if index else q
        return [PinRow(*r) for r in self.conn.execute(q)]

    def replace(self, user: str, site_id: int, pin_hash: str, index: str) -> None:
        self.conn.execute(delete(VerifierPin).where(VerifierPin.user == user, VerifierPin.site_id == site_id))
        self.conn.execute(
            insert(VerifierPin).values(user=user, site_id=site_id, pin_hash=pin_hash, pin_index=index)
        )

    def upgrade(self, pin_id: int, pin_hash: str, index: str) -> None:
        self.conn.execute(
            update(VerifierPin)
            .where(VerifierPin.id == pin_id)
            .values(pin_hash=pin_hash, pin_digest=None, pin_index=index)
        )
