# Verifier PINs: a random salt per person and a slow hash; old per-site digests rehashed at their next use.
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select

from gateway.adapters.db.engine import make_engine, migrate
from gateway.adapters.db.models import VerifierPin
from gateway.domain.errors import Conflict
from gateway.services.pins import legacy_digest, set_pin, sign_in
from gateway.services.sites import SiteIn, create_site


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    e = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    migrate(e)
    for slug in ("zoo", "park"):
        create_site(e, SiteIn(slug=slug, name=slug))
    return e


def pins(e: Engine) -> list[tuple[str, int, str | None, str | None]]:
    with e.connect() as c:
        rows = c.execute(
            select(VerifierPin.user, VerifierPin.site_id, VerifierPin.pin_hash, VerifierPin.pin_digest)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_a_copied_database_holds_no_shared_pin_digest(engine: Engine) -> None:
    """The same PIN for two people (at two sites) is stored as two unrelated salted slow hashes: a
    stolen copy must be attacked person by person, each guess costing a full scrypt."""
    set_pin(engine, "ana", "zoo", "4321")
    set_pin(engine, "bo", "park", "4321")
    (_, _, h1, d1), (_, _, h2, d2) = pins(engine)
    assert h1 and h2 and h1 != h2 and d1 is None and d2 is None
    assert h1.startswith("scrypt$16384$8$1$") and "4321" not in h1
    with engine.connect() as c:
        assert sign_in(c, "dev1", 1, "4321") == "ana"
        assert sign_in(c, "dev1", 2, "4321") == "bo"
        assert sign_in(c, "dev1", 1, "4322") is None


def test_a_pin_is_unique_among_a_sites_verifiers(engine: Engine) -> None:
    set_pin(engine, "ana", "zoo", "1111")
    with pytest.raises(Conflict):
        set_pin(engine, "bo", "zoo", "1111")
    set_pin(engine, "ana", "zoo", "1111")  # setting one's own PIN again is fine
    set_pin(engine, "bo", "park", "1111")  # another site may reuse it
    assert len(pins(engine)) == 2


def test_an_old_digest_is_rehashed_at_its_next_sign_in(engine: Engine) -> None:
    """Migration 0007 cannot re-salt digests without the PIN: the first sign-in with it does."""
    with engine.connect() as c, c.begin():
        c.execute(insert(VerifierPin).values(user="old", site_id=1, pin_digest=legacy_digest(1, "2468")))
    with pytest.raises(Conflict):  # the old digest still counts for uniqueness
        set_pin(engine, "ana", "zoo", "2468")
    with engine.connect() as c, c.begin():
        assert sign_in(c, "dev1", 1, "1357") is None
        assert pins(engine)[0][2] is None  # a wrong PIN changes nothing
        assert sign_in(c, "dev1", 1, "2468") == "old"
    ((user, _, hashed, digest),) = pins(engine)
    assert user == "old" and hashed and digest is None
    with engine.connect() as c:
        assert sign_in(c, "dev1", 1, "2468") == "old"  # and the new hash works
