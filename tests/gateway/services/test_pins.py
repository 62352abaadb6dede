# Verifier PINs: a random salt per person, a slow hash, a keyed look-up index; old rows updated at their next use.
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select, update

import gateway.services.pins as pins_mod
from gateway.adapters.db.engine import make_engine, migrate
from gateway.adapters.db.models import VerifierPin
from gateway.adapters.db.repositories.database import SqlDatabase, SqlTx
from gateway.domain.errors import Conflict
from gateway.services.pins import legacy_digest, pin_index, set_pin, sign_in
from gateway.services.sites import SiteIn, create_site

KEY = bytes(range(32))


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    e = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    migrate(e)
    for slug in ("zoo", "park"):
        create_site(SqlDatabase(e), SiteIn(slug=slug, name=slug))
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
    set_pin(SqlDatabase(engine), "ana", "zoo", "4321", KEY)
    set_pin(SqlDatabase(engine), "bo", "park", "4321", KEY)
    (_, _, h1, d1), (_, _, h2, d2) = pins(engine)
    assert h1 and h2 and h1 != h2 and d1 is None and d2 is None
    assert h1.startswith("scrypt$16384$8$1$") and "4321" not in h1
    with engine.connect() as c:
        assert sign_in(SqlTx(c), "dev1", 1, "4321", KEY) == "ana"
        assert sign_in(SqlTx(c), "dev1", 2, "4321", KEY) == "bo"
        assert sign_in(SqlTx(c), "dev1", 1, "4322", KEY) is None


def test_a_pin_is_unique_among_a_sites_verifiers(engine: Engine) -> None:
    set_pin(SqlDatabase(engine), "ana", "zoo", "1111", KEY)
    with pytest.raises(Conflict):
        set_pin(SqlDatabase(engine), "bo", "zoo", "1111", KEY)
    set_pin(SqlDatabase(engine), "ana", "zoo", "1111", KEY)  # setting one's own PIN again is fine
    set_pin(SqlDatabase(engine), "bo", "park", "1111", KEY)  # another site may reuse it
    assert len(pins(engine)) == 2


def test_an_old_digest_is_rehashed_at_its_next_sign_in(engine: Engine) -> None:
    """Migration 0007 cannot re-salt digests without the PIN: the first sign-in with it does."""
    with engine.connect() as c, c.begin():
        c.execute(insert(VerifierPin).values(user="old", site_id=1, pin_digest=legacy_digest(1, "2468")))
    with pytest.raises(Conflict):  # the old digest still counts for uniqueness
        set_pin(SqlDatabase(engine), "ana", "zoo", "2468", KEY)
    with engine.connect() as c, c.begin():
        assert sign_in(SqlTx(c), "dev1", 1, "1357", KEY) is None
        assert pins(engine)[0][2] is None  # a wrong PIN changes nothing
        assert sign_in(SqlTx(c), "dev1", 1, "2468", KEY) == "old"
    ((user, _, hashed, digest),) = pins(engine)
    assert user == "old" and hashed and digest is None
    with engine.connect() as c:
        assert sign_in(SqlTx(c), "dev1", 1, "2468", KEY) == "old"  # and the new hash works


def test_a_sign_in_checks_one_slow_hash_whatever_the_number_of_verifiers(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The keyed index finds the row: a right PIN costs one slow hash, a wrong one none, however many
    verifiers the site has (each hash is ~30 ms on the redemption service's thread)."""
    for i in range(8):
        set_pin(SqlDatabase(engine), f"v{i}", "zoo", f"{1000 + i}", KEY)
    calls: list[str] = []
    real = pins_mod.verify_password
    monkeypatch.setattr(pins_mod, "verify_password", lambda pin, h: calls.append(pin) or real(pin, h))
    with engine.connect() as c:
        assert sign_in(SqlTx(c), "dev1", 1, "1007", KEY) == "v7"
        assert calls == ["1007"]
        calls.clear()
        assert sign_in(SqlTx(c), "dev1", 1, "9999", KEY) is None and calls == []
        assert (
            sign_in(SqlTx(c), "dev1", 1, "1007", bytes(32)) is None
        )  # another key finds nothing: no cheap test


def test_a_row_without_an_index_gets_it_at_its_next_sign_in(engine: Engine) -> None:
    set_pin(SqlDatabase(engine), "ana", "zoo", "5555", KEY)
    with engine.connect() as c, c.begin():
        c.execute(update(VerifierPin).values(pin_index=None))  # as rows salted before migration 0008
    with engine.connect() as c, c.begin():
        assert sign_in(SqlTx(c), "dev1", 1, "5555", KEY) == "ana"
    with engine.connect() as c:
        assert c.execute(select(VerifierPin.pin_index)).scalar() == pin_index(KEY, 1, "5555")
