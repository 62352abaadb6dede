# A device alarm's latest sighting: noted on the open alarm of that kind only, refused when none is open.
from __future__ import annotations

from sqlalchemy import select

from gateway.adapters.db.models import DeviceAlarm
from gateway.adapters.db.repositories.database import SqlDatabase


def test_seen_notes_the_open_alarm_of_its_kind_only(db: SqlDatabase) -> None:
    with db.write() as tx:
        assert not tx.alarms.seen("web-ann", "guessing", 5.0)  # none open yet
        tx.alarms.open("web-ann", "guessing", 1.0, 1.0)
        tx.alarms.open("web-ann", "silent", 1.0, 1.0)
        assert tx.alarms.seen("web-ann", "guessing", 7.0)
        tx.alarms.clear(["web-ann"], "silent", 8.0)
        assert not tx.alarms.seen("web-ann", "silent", 9.0)  # cleared: not noted any more
    with db.engine.connect() as c:
        rows = c.execute(select(DeviceAlarm.kind, DeviceAlarm.last_seen).order_by(DeviceAlarm.id)).all()
    assert [tuple(r) for r in rows] == [("guessing", 7.0), ("silent", 1.0)]
