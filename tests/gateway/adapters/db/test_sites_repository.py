# The sites repository: a taken slug is refused without a change; the listing is sorted by slug.
from __future__ import annotations

from gateway.adapters.db.repositories.database import SqlDatabase


def _site(slug: str, name: str) -> dict[str, object]:
    return {
        "slug": slug,
        "name": name,
        "timezone": "Asia/Shanghai",
        "auto_checkout": "23:00",
        "created_at": 1.0,
    }


def test_a_taken_slug_is_refused_and_the_first_site_kept(db: SqlDatabase) -> None:
    with db.write() as tx:
        assert tx.sites.add(_site("zoo", "Zoo"))
    with db.write() as tx:
        assert not tx.sites.add(_site("zoo", "Another zoo"))
    with db.read() as tx:
        assert [s["name"] for s in tx.sites.listing()] == ["Zoo"]


def test_the_listing_is_by_slug_with_zone_and_check_out_time(db: SqlDatabase) -> None:
    with db.write() as tx:
        tx.sites.add(_site("b", "Bee"))
        tx.sites.add(_site("a", "Ay"))
    with db.read() as tx:
        listing = tx.sites.listing()
        ids = tx.sites.ids()
    assert listing == [
        {"slug": "a", "name": "Ay", "timezone": "Asia/Shanghai", "auto_checkout": "23:00"},
        {"slug": "b", "name": "Bee", "timezone": "Asia/Shanghai", "auto_checkout": "23:00"},
    ]
    assert sorted(ids) == ["a", "b"] and ids["a"] != ids["b"]
