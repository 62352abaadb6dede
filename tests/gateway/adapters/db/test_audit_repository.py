# The audit repository: an entry keeps every field it was given, and is found by its reason prefix.
from __future__ import annotations

from sqlalchemy import select

from gateway.adapters.db.models import Audit
from gateway.adapters.db.repositories.database import SqlDatabase


def test_an_audit_entry_keeps_its_fields(db: SqlDatabase) -> None:
    with db.write() as tx:
        tx.audit.add(5.0, "ann", "provision", "device d1 at zoo")
        tx.audit.add(6.0, "bob", "refund", "broken", order_id=7, redemption_id=8, units=2)
    with db.engine.connect() as c:
        rows = c.execute(
            select(
                Audit.at,
                Audit.actor,
                Audit.action,
                Audit.reason,
                Audit.order_id,
                Audit.redemption_id,
                Audit.units,
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        (5.0, "ann", "provision", "device d1 at zoo", None, None, 0),
        (6.0, "bob", "refund", "broken", 7, 8, 2),
    ]


def test_recorded_matches_action_actor_and_the_reason_prefix_literally(db: SqlDatabase) -> None:
    with db.write() as tx:
        tx.audit.add(1.0, "webhook", "refund", "webhook eX1: broken")
    with db.read() as tx:
        assert tx.audit.recorded("refund", "webhook", "webhook eX1:")
        assert not tx.audit.recorded("refund", "webhook", "webhook e_1:")  # `_` is no wildcard
        assert not tx.audit.recorded("refund", "webhook", "webhook e%:")  # nor is `%`
        assert not tx.audit.recorded("cancel", "webhook", "webhook eX1:")
        assert not tx.audit.recorded("refund", "ann", "webhook eX1:")
