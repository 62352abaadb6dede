# The devices, alarms and credentials repositories: placing, revoked devices left out, alarms by kind.
from __future__ import annotations

from gateway.adapters.db.repositories.database import SqlDatabase
from tests.gateway.adapters.db.site_rows import add_site


def test_placing_listing_and_revoked_devices(db: SqlDatabase) -> None:
    zoo = add_site(db, "zoo")
    with db.write() as tx:
        tx.devices.place("d1", {"site_id": zoo, "gate": "G1", "mode": "handheld"}, 1.0)
        tx.devices.place("d2", {"site_id": zoo, "gate": "G2", "mode": "handheld"}, 1.0)
        tx.devices.place(
            "d1", {"site_id": zoo, "gate": "North", "mode": "turnstile"}, 2.0
        )  # moved, not added
        tx.credentials.add("d2", "$7$h", "esp32", 1.0)
        assert tx.credentials.revoke("d2", 3.0) and not tx.credentials.revoke("d2", 4.0)
        tx.devices.set_mode("d2", "turnstile")
    with db.read() as tx:
        assert tx.devices.site_of("d1") == (True, "zoo") and tx.devices.site_of("nope") == (False, None)
        assert tx.devices.exists("d2") and not tx.devices.exists("nope")
        assert tx.devices.at_site(zoo) == ["d1"] and tx.devices.last_seen() == {"d1": None}
        rows = tx.devices.listing()
        assert [(r[0], r[2], r[3], r[8], r[9]) for r in rows] == [
            ("d1", "North", "turnstile", None, None),
            ("d2", "G2", "turnstile", 1, 3.0),
        ]
        assert [r[0] for r in tx.devices.listing(device="d2")] == ["d2"] and tx.devices.listing("x") == []
        assert tx.credentials.revoked_at("d2") == (3.0,) and tx.credentials.revoked_at("d1") is None
        assert tx.credentials.live() == []


def test_credentials_rotate_and_commands_newest_first(db: SqlDatabase) -> None:
    with db.write() as tx:
        tx.credentials.add("d1", "$7$a", "esp32", 1.0)
        tx.credentials.revoke("d1", 2.0)
        tx.credentials.replace("d1", "$7$b", "esp32-s3", 2, 5.0)  # a new secret lifts the revocation
        for i in range(3):
            tx.devices.record_command("d1", f"c{i}", {"i": i}, "api", float(i))
    with db.read() as tx:
        assert tx.credentials.current("d1") == (2, "esp32-s3") and tx.credentials.current("d2") is None
        assert tx.credentials.state("d1") == {
            "generation": 2,
            "board": "esp32-s3",
            "issued_at": 5.0,
            "revoked_at": None,
        }
        assert tx.credentials.live() == [("d1", "$7$b")]
        assert [c["cmd"] for c in tx.devices.commands("d1", 2)] == ["c2", "c1"]


def test_alarms_open_clear_and_go_stale_by_kind(db: SqlDatabase) -> None:
    with db.write() as tx:
        tx.alarms.open("d1", "silent", 10.0, 1.0)
        tx.alarms.open("d2", "silent", 10.0, 2.0)
        tx.alarms.open("web-ann", "guessing", 10.0, 10.0)
        tx.alarms.open("web-bob", "guessing", 10.0, 50.0)
    with db.write() as tx:
        assert tx.alarms.open_devices("silent") == {"d1", "d2"} and len(tx.alarms.open_devices()) == 4
        tx.alarms.clear(["d1", "web-ann"], "silent", 20.0)  # only d1: web-ann's alarm is of another kind
        tx.alarms.clear_stale("guessing", 30.0, 20.0)  # web-ann's last miss is older than 30
    with db.read() as tx:
        assert tx.alarms.open_devices() == {"d2", "web-bob"}
        listed = tx.alarms.listing(include_cleared=True, limit=3)
        assert [a["device"] for a in listed] == ["web-bob", "web-ann", "d2"] and listed[1][
            "cleared_at"
        ] == 20.0
        assert [a["device"] for a in tx.alarms.listing(include_cleared=False, limit=10)] == ["web-bob", "d2"]
