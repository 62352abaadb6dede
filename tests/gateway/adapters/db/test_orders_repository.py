# The orders repository: taken codes with their site, lookup by code or short code, chunked inserts.
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
