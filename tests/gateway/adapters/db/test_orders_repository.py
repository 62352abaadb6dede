# The orders repository: taken codes with their site, lookups, chunked and single inserts, versioned changes.
from __future__ import annotations

from typing import Any

from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.adapters.db.repositories.orders import CHUNK


def _order(code: str, site_id: int | None = None) -> dict[str, Any]:
    return {
        "code": code,
        "short_code": "S" + code,
        "title": "T",
        "kind": "ticket",
        "quantity": 2,
        "used": 0,
        "refunded": 0,
        "status": "active",
        "site_id": site_id,
        "paid_at": 1.0,
        "created_at": 1.0,
    }


def test_inserts_beyond_one_chunk_and_finds_what_is_taken(db: SqlDatabase) -> None:
    with db.read() as tx:
        assert tx.orders.empty()
    with db.write() as tx:
        tx.sites.add(
            {"slug": "zoo", "name": "Zoo", "timezone": "UTC", "auto_checkout": None, "created_at": 0.0}
        )
        zoo = tx.sites.ids()["zoo"]
        tx.orders.insert([_order(f"C{i}") for i in range(CHUNK + 3)] + [_order("AT-ZOO", zoo)])
    with db.read() as tx:
        assert not tx.orders.empty()
        assert tx.orders.taken(["C0", f"C{CHUNK + 2}", "AT-ZOO", "FREE"]) == {
            "C0": None,
            f"C{CHUNK + 2}": None,
            "AT-ZOO": "zoo",
        }
        by_code = tx.orders.find("AT-ZOO", "nothing")
        by_short = tx.orders.find("nothing", "SAT-ZOO")
        assert tx.orders.find("nothing", "nothing") is None
    assert by_code is not None and by_code == by_short
    assert (by_code["code"], by_code["site_slug"], by_code["quantity"]) == ("AT-ZOO", "zoo", 2)


def test_one_order_is_added_found_by_shop_order_and_paid_version_checked(db: SqlDatabase) -> None:
    with db.write() as tx:
        assert tx.orders.add({**_order("L2"), "external_ref": "shop-7", "status": "unpaid"})
        assert tx.orders.add({**_order("L1"), "external_ref": "shop-7"})
        assert tx.orders.add(_order("OTHER"))
    with db.write() as tx:
        assert not tx.orders.add(_order("L1"))  # the code is taken: nothing inserted
    with db.read() as tx:
        assert tx.orders.codes_of("shop-7") == ["L2", "L1"]  # in the order they were created
        assert tx.orders.codes_of("shop-8") == []
        assert tx.orders.lines(["L2", "NONE"]) == {"L2": {"title": "T", "quantity": 2, "status": "unpaid"}}
        st = tx.orders.state("L2")
        assert tx.orders.state("NONE") is None
    assert st is not None and (st["status"], st["product_id"], st["valid_until"]) == ("unpaid", None, None)
    with db.write() as tx:
        assert not tx.orders.change(st["id"], st["version"] + 1, {"status": "active"})  # stale version
        assert tx.orders.change(st["id"], st["version"], {"status": "active", "version": st["version"] + 1})
        assert not tx.orders.change(st["id"], st["version"], {"status": "refunded"})  # it moved on
    with db.read() as tx:
        assert tx.orders.lines(["L2"])["L2"]["status"] == "active"


def test_open_codes_skip_cancelled_orders_and_match_the_prefix_literally(db: SqlDatabase) -> None:
    with db.write() as tx:
        tx.orders.insert(
            [_order("HX_A-1"), {**_order("HX_A-2"), "status": "cancelled"}, _order("HXZA-3"), _order("A-4")]
        )
    with db.read() as tx:
        assert tx.orders.open_codes("HX_A-") == ["HX_A-1"]  # `_` is no wildcard
        assert tx.orders.open_codes("NONE-") == []
