# The PIN repository: one PIN per verifier and site, the index filter, old rows upgraded in place.
from __future__ import annotations

from gateway.adapters.db.repositories.database import SqlDatabase
from tests.gateway.adapters.db.site_rows import add_site


def test_one_pin_per_verifier_and_site_found_by_index(db: SqlDatabase) -> None:
    zoo, park = add_site(db, "zoo"), add_site(db, "park")
    with db.write() as tx:
        tx.pins.replace("ana", zoo, "h1", "i1")
        tx.pins.replace("ana", zoo, "h2", "i2")  # her new PIN replaces the old one
        tx.pins.replace("bo", zoo, "h3", "i3")
        tx.pins.replace("ana", park, "h4", "i4")
    with db.read() as tx:
        assert sorted((r.user, r.pin_hash) for r in tx.pins.at_site(zoo)) == [("ana", "h2"), ("bo", "h3")]
        assert [r.user for r in tx.pins.at_site(zoo, "i3")] == ["bo"] and tx.pins.at_site(zoo, "i4") == []
        (row,) = tx.pins.at_site(park)
    with db.write() as tx:
        tx.pins.upgrade(row.id, "h5", "i5")
    with db.read() as tx:
        assert [(r.pin_hash, r.pin_digest, r.pin_index) for r in tx.pins.at_site(park)] == [
            ("h5", None, "i5")
        ]


def test_a_device_registered_twice_is_no_error_and_reports_its_status(db: SqlDatabase) -> None:
    zoo = add_site(db, "zoo")
    with db.write() as tx:
        assert not tx.devices.report("d1", {"online": True, "last_seen": 1.0})  # not registered yet
        tx.devices.register("d1", zoo, 1.0)
        tx.devices.register("d1", None, 2.0)  # a concurrent registration: kept the first, no error
        assert tx.devices.report("d1", {"online": True, "last_seen": 3.0, "status": {"fw": "1.2"}})
        tx.devices.sign("d1", "ana")
        assert tx.sites.by_slug("zoo") == (zoo, "UTC") and tx.sites.by_slug("nope") is None
    with db.read() as tx:
        assert tx.devices.where("d1") == (zoo, "d1", "UTC", "ana") and tx.devices.where("d2") is None
        assert tx.devices.signed_in("d1") == "ana"
        assert [(r[0], r[4], r[5], r[6]) for r in tx.devices.listing()] == [("d1", True, 3.0, {"fw": "1.2"})]
