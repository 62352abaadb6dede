# The accounts repositories: a person's sites, inactive people, expired sessions purged, tokens revoked.
from __future__ import annotations

from gateway.adapters.db.repositories.database import SqlDatabase
from tests.gateway.adapters.db.site_rows import site_row


def _sites(db: SqlDatabase, *slugs: str) -> dict[str, int]:
    with db.write() as tx:
        for s in slugs:
            tx.sites.add(site_row(s))
        return tx.sites.ids()


def test_a_person_with_sites_and_an_inactive_one(db: SqlDatabase) -> None:
    ids = _sites(db, "a", "b")
    with db.read() as tx:
        assert tx.people.empty()
    with db.write() as tx:
        ann = tx.people.add("ann", "h1", "manager", 1.0)
        bob = tx.people.add("bob", "h2", "verifier", 1.0)
        tx.people.add_sites(ann, [ids["b"], ids["a"]])
        tx.people.change(bob, {"active": False})
    with db.read() as tx:
        p = tx.people.person(ann, "session", "x")
        assert p is not None and (p.name, p.role, p.sites, p.via, p.csrf) == (
            "ann",
            "manager",
            {"a", "b"},
            "session",
            "x",
        )
        assert tx.people.person(bob, "token") is None and tx.people.login("bob") == (bob, "h2", False)
        assert tx.people.id_of("ann") == ann and tx.people.id_of("nobody") is None and not tx.people.empty()
        assert [(u["name"], u["sites"]) for u in tx.people.listing()] == [("ann", ["a", "b"]), ("bob", [])]
    with db.write() as tx:
        tx.people.clear_sites(ann)
    with db.read() as tx:
        p = tx.people.person(ann, "session")
        assert p is not None and p.sites == frozenset()


def test_sessions_expire_and_end_and_tokens_are_revoked(db: SqlDatabase) -> None:
    with db.write() as tx:
        uid = tx.people.add("ann", "h", "owner", 1.0)
        tx.sessions.start("old", uid, "c1", 100.0, 150.0)
        tx.sessions.start("new", uid, "c2", 200.0, 300.0)  # purges every session expired at 200
        tx.sessions.start("other", uid, "c3", 200.0, 300.0)
        tx.tokens.add(uid, "ci", "hash", "hxt_abc", 5.0)
    with db.write() as tx:
        assert tx.sessions.find("old") is None and tx.sessions.find("new") == (uid, "c2", 300.0)
        tx.sessions.end("new")
        assert tx.sessions.find("new") is None and tx.sessions.find("other") is not None
        tx.sessions.end_all(uid)
        assert tx.sessions.find("other") is None
        found = tx.tokens.find("hash")
        assert found is not None and found[1:] == (uid, None)
        tx.tokens.touch(found[0], 9.0)
        assert tx.tokens.find("hash") == (found[0], uid, 9.0)
        assert tx.tokens.revoke(found[0]) and not tx.tokens.revoke(found[0] + 1)
    with db.read() as tx:
        assert tx.tokens.find("hash") is None
        assert [(t["user"], t["name"], t["revoked"]) for t in tx.tokens.listing()] == [("ann", "ci", True)]
