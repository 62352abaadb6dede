# The auth layer without a browser: passwords, roles, rate limit, users/sessions/tokens in a real SQLite,
# the language pick, the live hand-over from another thread, and the first-start owner account.
from __future__ import annotations

import asyncio
import os
import stat
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine

from gateway.adapters.db.engine import make_engine, migrate
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.domain.errors import Conflict, ValidationFailed
from gateway.domain.passwords import hash_password, verify_password
from gateway.domain.roles import Person
from gateway.domain.signin_limit import LoginLimiter
from gateway.entrypoints.console.i18n import pick_lang, translator
from gateway.entrypoints.console.live import LiveHub
from gateway.services.accounts import (
    authenticate,
    create_session,
    create_user,
    end_session,
    ensure_owner,
    issue_api_token,
    list_tokens,
    revoke_token,
    session_person,
    set_password,
    token_person,
    update_user,
)
from gateway.services.orders import SiteIn, create_site


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    e = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    migrate(e)
    for slug in ("s1", "s2"):
        create_site(SqlDatabase(e), SiteIn(slug=slug, name=slug.upper()))
    return e


def test_password_hashes_are_salted_and_checked() -> None:
    a, b = hash_password("correct horse"), hash_password("correct horse")
    assert a != b and a.startswith("scrypt$")
    assert verify_password("correct horse", a)
    assert not verify_password("correct horsE", a)
    assert not verify_password("x", "not-a-hash")


def test_roles_ladder_and_site_scope() -> None:
    v = Person(1, "v", "verifier", frozenset({"s1"}))
    m = Person(2, "m", "manager", frozenset({"s1"}))
    o = Person(3, "o", "owner", frozenset())
    assert not v.at_least("supervisor") and m.at_least("supervisor") and o.at_least("manager")
    assert v.may_site("s1") and not v.may_site("s2") and not v.may_site(None)
    assert o.may_site("s2") and o.may_site(None)
    assert not v.sees_site(None) and m.sees_site(None) and not m.sees_site("s2")


def test_login_limiter_window() -> None:
    lim = LoginLimiter(max_failures=3, window=60)
    for i in range(3):
        assert lim.retry_after("ann", "1.2.3.4", 100 + i) == 0
        lim.failed("ann", "1.2.3.4", 100 + i)
    assert lim.retry_after("ann", "1.2.3.4", 110) == pytest.approx(50)
    assert lim.retry_after("ANN", "1.2.3.4", 110) > 0  # names are case-blind
    assert lim.retry_after("ann", "5.6.7.8", 110) == 0  # a stranger's failures never lock ann out elsewhere
    assert lim.retry_after("bob", "1.2.3.4", 110) == 0  # the address alone allows more
    assert lim.retry_after("ann", "1.2.3.4", 161) == 0  # the window slides
    for i in range(12):
        lim.failed(f"user{i}", "9.9.9.9", 200)
    assert lim.retry_after("someone-else", "9.9.9.9", 201) > 0  # one address sweeping many names


def test_signin_backoff_per_name_across_addresses_spares_known_addresses() -> None:
    lim = LoginLimiter(max_failures=3, window=60)
    lim.succeeded("owner", "10.0.0.1")  # the owner's own desk
    for i in range(30):  # 3 × 10 failures, from a new address every 2 tries
        addr = f"10.9.{i // 2}.1"
        assert lim.retry_after("owner", addr, 100) == 0, i
        lim.failed("owner", addr, 100)
    assert lim.retry_after("owner", "10.9.99.1", 101) > 0  # a fresh address is slowed down too
    assert lim.retry_after("owner", "10.0.0.1", 101) == 0  # the owner still signs in where they did
    assert lim.retry_after("ann", "10.9.99.1", 101) == 0  # other names are not affected


def test_users_sessions_and_tokens(engine: Engine) -> None:
    create_user(SqlDatabase(engine), "ann", "pass-word-1", "manager", ["s1"])
    with pytest.raises(Conflict):
        create_user(SqlDatabase(engine), "ann", "pass-word-2", "verifier")
    with pytest.raises(ValidationFailed):
        create_user(SqlDatabase(engine), "bad name!", "pass-word-1", "verifier")
    with pytest.raises(ValidationFailed):
        create_user(SqlDatabase(engine), "bob", "short", "verifier")
    with pytest.raises(ValidationFailed):
        create_user(SqlDatabase(engine), "bob", "pass-word-1", "king")
    with pytest.raises(ValidationFailed):
        create_user(SqlDatabase(engine), "bob", "pass-word-1", "verifier", ["nowhere"])
    assert authenticate(SqlDatabase(engine), "ann", "wrong-password") is None
    assert authenticate(SqlDatabase(engine), "nobody", "pass-word-1") is None
    ann = authenticate(SqlDatabase(engine), "ann", "pass-word-1")
    assert ann is not None and ann.role == "manager" and ann.sites == {"s1"}
    s = create_session(SqlDatabase(engine), ann.id, now=1000.0)
    assert session_person(SqlDatabase(engine), s.cookie, now=1001.0) == Person(
        ann.id, "ann", "manager", frozenset({"s1"}), "session", s.csrf
    )
    assert session_person(SqlDatabase(engine), s.cookie, now=1000.0 + 13 * 3600) is None  # expired
    assert session_person(SqlDatabase(engine), "made-up", now=1001.0) is None
    # Changing a person's role or password ends their sessions.
    update_user(SqlDatabase(engine), "ann", role="supervisor", sites=["s1", "s2"])
    assert session_person(SqlDatabase(engine), s.cookie, now=1001.0) is None
    s2 = create_session(SqlDatabase(engine), ann.id)
    assert session_person(SqlDatabase(engine), s2.cookie) is not None
    set_password(SqlDatabase(engine), "ann", "new-pass-word")
    assert session_person(SqlDatabase(engine), s2.cookie) is None
    s3 = create_session(SqlDatabase(engine), ann.id)
    end_session(SqlDatabase(engine), s3.cookie)
    assert session_person(SqlDatabase(engine), s3.cookie) is None
    # Disabled people cannot sign in.
    update_user(SqlDatabase(engine), "ann", active=False)
    assert authenticate(SqlDatabase(engine), "ann", "new-pass-word") is None
    update_user(SqlDatabase(engine), "ann", active=True)
    # API tokens: only a digest is stored, revocable.
    token = issue_api_token(SqlDatabase(engine), "ann", "shop")
    p = token_person(SqlDatabase(engine), token)
    assert p is not None and p.name == "ann" and p.via == "token" and p.sites == {"s1", "s2"}
    (row,) = list_tokens(SqlDatabase(engine))
    assert row["prefix"] == token[:10] and row["last_used_at"] is not None
    with engine.connect() as c:
        stored = c.exec_driver_sql("SELECT token_hash FROM api_tokens").scalar()
    assert stored != token and token not in str(stored)
    revoke_token(SqlDatabase(engine), row["id"])
    assert token_person(SqlDatabase(engine), token) is None


def test_first_start_creates_the_owner_once(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OWNER_PASSWORD", raising=False)
    secret = ensure_owner(SqlDatabase(engine), tmp_path / "var")
    assert secret is not None
    path = tmp_path / "var" / "owner-password.txt"
    assert path.read_text().strip() == secret
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert authenticate(SqlDatabase(engine), "owner", secret) is not None
    assert ensure_owner(SqlDatabase(engine), tmp_path / "var") is None  # never again once someone exists


def test_owner_password_from_environment(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OWNER_PASSWORD", "from-the-env-1")
    assert ensure_owner(SqlDatabase(engine), tmp_path) is None
    assert not (tmp_path / "owner-password.txt").exists()
    assert authenticate(SqlDatabase(engine), "owner", "from-the-env-1") is not None


def test_language_pick() -> None:
    assert pick_lang(None, "zh-CN,zh;q=0.9,en;q=0.8") == "zh"
    assert pick_lang(None, "en-US,en;q=0.9,zh-CN;q=0.5") == "en"
    assert pick_lang(None, "fr-FR, zh-TW;q=0.3") == "zh"
    assert pick_lang(None, "de") == "en"
    assert pick_lang("en", "zh-CN") == "en"
    assert pick_lang("xx", None) == "en"
    assert translator("zh")("Sign in") == "登录"
    assert translator("zh")("Last {n} days", n=7) == "最近 7 天"
    assert translator("en")("Last {n} days", n=7) == "Last 7 days"


def test_live_hub_hands_events_over_from_another_thread(engine: Engine) -> None:
    """Events published on a foreign thread reach a subscriber on the loop, enriched, with ids for replay."""

    async def main() -> list[dict[str, object]]:
        hub = LiveHub(engine, asyncio.get_running_loop())
        hub.start()
        owner = Person(1, "o", "owner", frozenset())
        sub = hub.subscribe(owner, None, None)
        only_s2 = hub.subscribe(Person(2, "v", "supervisor", frozenset({"s2"})), None, None)

        def fire() -> None:
            for i in range(3):
                verdict = {
                    "sid": f"x{i}",
                    "ok": False,
                    "reason": "UNKNOWN_CODE",
                    "l1": "UNKNOWN CODE",
                    "l2": "",
                }
                hub.listener({"t": 1.0, "device": "d1", "code": f"C{i}", "verdict": verdict})

        t = threading.Thread(target=fire)
        t.start()
        t.join()
        got = [await asyncio.wait_for(sub.q.get(), 5) for _ in range(3)]
        assert only_s2.q.empty()  # no site known for these: hidden from a supervisor of s2
        late = hub.subscribe(owner, None, int(str(got[0]["id"])))
        replay = [late.q.get_nowait() for _ in range(2)]
        assert [e["code"] for e in replay] == ["C1", "C2"]
        await hub.stop()
        return got

    # Own thread, own loop: the session's sync Playwright keeps an event loop on the main thread.
    out: list[list[dict[str, object]]] = []
    runner = threading.Thread(target=lambda: out.append(asyncio.run(main())))
    runner.start()
    runner.join(30)
    (got,) = out
    assert [e["code"] for e in got] == ["C0", "C1", "C2"]
    assert [e["id"] for e in got] == [1, 2, 3]
    assert all(e["reason"] == "UNKNOWN_CODE" and e["site"] is None for e in got)
