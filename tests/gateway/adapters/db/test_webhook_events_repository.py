# The inbound webhook events repository: a new id is claimed once, reclaimed, finished with its result.
from __future__ import annotations

from sqlalchemy import select

from gateway.adapters.db.models import WebhookEvent
from gateway.adapters.db.repositories.database import SqlDatabase


def test_an_event_is_claimed_once_then_finished(db: SqlDatabase) -> None:
    with db.read() as tx:
        assert tx.webhook_events.get("e1") is None and tx.webhook_events.result("e1") is None
    with db.write() as tx:
        assert tx.webhook_events.add("e1", "order.paid", "C-1", 10.0)
    with db.read() as tx:
        assert tx.webhook_events.get("e1") == {
            "type": "order.paid",
            "state": "claimed",
            "result": None,
            "received_at": 10.0,
        }
        assert tx.webhook_events.result("e1") is None  # claimed is not applied
    with db.write() as tx:
        assert not tx.webhook_events.add("e1", "order.paid", "C-1", 11.0)  # the id is taken: no second claim


def test_a_failed_event_is_reclaimed_and_a_done_one_keeps_its_result(db: SqlDatabase) -> None:
    with db.write() as tx:
        tx.webhook_events.add("e2", "order.refunded", "C-2", 1.0)
        tx.webhook_events.finish("e2", "failed", None, "conflict: busy", 2.0)
    with db.write() as tx:
        tx.webhook_events.reclaim("e2", 3.0)
    with db.engine.connect() as c:
        row = c.execute(
            select(WebhookEvent.state, WebhookEvent.received_at, WebhookEvent.error, WebhookEvent.code)
        ).one()
    assert tuple(row) == ("claimed", 3.0, None, "C-2")
    with db.write() as tx:
        tx.webhook_events.finish("e2", "done", {"code": "C-2", "refunded": 1}, None, 4.0)
    with db.read() as tx:
        assert tx.webhook_events.result("e2") == {"code": "C-2", "refunded": 1}
        got = tx.webhook_events.get("e2")
    assert got is not None and got["state"] == "done"
    with db.engine.connect() as c:
        assert c.execute(select(WebhookEvent.finished_at)).scalar() == 4.0
