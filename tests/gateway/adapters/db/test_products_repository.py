# The products repository: SKUs stay taken after retirement, only live products are found, changed or
# listed; the validity of any product (retired too) is read by its id.
from __future__ import annotations

from typing import Any

from gateway.adapters.db.repositories.database import SqlDatabase


def _product(sku: str, **extra: Any) -> dict[str, Any]:
    return {
        "sku": sku,
        "title": sku.title(),
        "kind": "ticket",
        "quantity": 1,
        "deleted": False,
        "created_at": 1.0,
        **extra,
    }


def test_a_retired_product_is_gone_but_its_sku_stays_taken(db: SqlDatabase) -> None:
    with db.write() as tx:
        assert tx.products.add(_product("spa", rules={"sites": [3, 1]}))
        assert tx.products.add(_product("zoo"))
    with db.write() as tx:
        assert tx.products.retire("zoo") and not tx.products.retire("zoo")
        assert not tx.products.add(_product("zoo"))  # retired, not erased: the SKU is not free again
        assert not tx.products.change("zoo", {"title": "Z"}) and tx.products.change("spa", {"title": "Spa!"})
    with db.read() as tx:
        assert [(p["sku"], p["title"]) for p in tx.products.listing()] == [("spa", "Spa!")]
        assert list(tx.products.live()) == ["spa"] and tx.products.live({"zoo", "nope"}) == {}
        assert tx.products.live(set()) == {}
        assert tx.products.rule_site_ids("spa") == [3, 1] and tx.products.rule_site_ids("zoo") is None


def test_a_live_product_carries_what_an_order_copies(db: SqlDatabase) -> None:
    with db.write() as tx:
        tx.products.add(_product("pack", kind="pack", quantity=5, valid_days=3, sale_until=9.0))
    with db.read() as tx:
        p = tx.products.live({"pack"})["pack"]
    assert (p.sku, p.kind, p.quantity, p.valid_days, p.sale_until, p.rules) == (
        "pack",
        "pack",
        5,
        3,
        9.0,
        None,
    )
    assert p.id > 0


def test_validity_is_read_by_id_even_after_retirement(db: SqlDatabase) -> None:
    with db.write() as tx:
        tx.products.add(_product("days", valid_days=3))
        tx.products.add(_product("fixed", valid_until=99.0))
        ids = {p["sku"]: p["id"] for p in tx.products.listing()}
        tx.products.retire("fixed")
    with db.read() as tx:
        assert tx.products.validity(ids["days"]) == (3, None)
        assert tx.products.validity(ids["fixed"]) == (None, 99.0)  # orders keep pointing at it
        assert tx.products.validity(max(ids.values()) + 1) is None
