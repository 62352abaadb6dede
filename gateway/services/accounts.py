# People, browser sessions and API tokens in the database: create, check, revoke. No HTTP here.
from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update

from gateway.adapters.db.engine import writer
from gateway.adapters.db.models import ApiToken, AuthSession, Site, User, UserSite
from gateway.domain.errors import Conflict, NotFound, ValidationFailed
from gateway.domain.passwords import burn_time, hash_password, verify_password
from gateway.domain.roles import NAME_PATTERN, RESERVED_NAMES, ROLES, Person
from gateway.services.local_access import write_secret

log = logging.getLogger(__name__)

SESSION_SECONDS = 12 * 3600
TOKEN_PREFIX = "hxt_"
MIN_PASSWORD = 8
FIRST_PASSWORD_FILE = "owner-password.txt"


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check(name: str, role: str, password: str | None) -> None:
    if not re.match(NAME_PATTERN, name):
        raise ValidationFailed("name: 1-30 letters, digits or _ . @ -", field="name")
    if name.lower() in RESERVED_NAMES:
        raise ValidationFailed(f"name: {name!r} is reserved for the gateway's own tools", field="name")
    if role not in ROLES:
        raise ValidationFailed(f"role must be one of {', '.join(ROLES)}", field="role")
    if password is not None and len(password) < MIN_PASSWORD:
        raise ValidationFailed(f"password: at least {MIN_PASSWORD} characters", field="password")


def _site_ids(conn: Any, sites: list[str]) -> list[int]:
    found = dict(conn.execute(select(Site.slug, Site.id).where(Site.slug.in_(sites))).all())
    missing = [s for s in sites if s not in found]
    if missing:
        raise ValidationFailed(f"unknown site(s): {', '.join(missing)}", field="sites")
    return [found[s] for s in sites]


def create_user(engine: Engine, name: str, password: str, role: str, sites: list[str] | None = None) -> int:
    """Create a person; returns the user id. Owners act on every site, so their `sites` are ignored."""
    _check(name, role, password)
    with engine.connect() as c, writer(c).begin():
        if c.execute(select(User.id).where(User.name == name)).first():
            raise Conflict(f"user {name!r} exists", name=name)
        ids = _site_ids(c, list(sites or [])) if role != "owner" else []
        uid: int = c.execute(
            insert(User)
            .values(
                name=name,
                password_hash=hash_password(password),
                role=role,
                active=True,
                created_at=time.time(),
            )
            .returning(User.id)
        ).scalar_one()
        for sid in ids:
            c.execute(insert(UserSite).values(user_id=uid, site_id=sid))
    return uid


def _uid(conn: Any, name: str) -> int:
    uid = conn.execute(select(User.id).where(User.name == name)).scalar()
    if uid is None:
        raise NotFound(f"no user {name!r}", name=name)
    return int(uid)


def update_user(
    engine: Engine,
    name: str,
    *,
    role: str | None = None,
    sites: list[str] | None = None,
    active: bool | None = None,
) -> None:
    with engine.connect() as c, writer(c).begin():
        uid = _uid(c, name)
        values: dict[str, Any] = {}
        if role is not None:
            _check(name, role, None)
            values["role"] = role
        if active is not None:
            values["active"] = active
        if values:
            c.execute(update(User).where(User.id == uid).values(**values))
        if sites is not None:
            ids = _site_ids(c, sites)
            c.execute(delete(UserSite).where(UserSite.user_id == uid))
            for sid in ids:
                c.execute(insert(UserSite).values(user_id=uid, site_id=sid))
        if active is False or role is not None:
            # A demoted or disabled person must not keep what their old sessions allowed.
            c.execute(delete(AuthSession).where(AuthSession.user_id == uid))


def set_password(engine: Engine, name: str, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(f"password: at least {MIN_PASSWORD} characters", field="password")
    with engine.connect() as c, writer(c).begin():
        uid = _uid(c, name)
        c.execute(update(User).where(User.id == uid).values(password_hash=hash_password(password)))
        c.execute(delete(AuthSession).where(AuthSession.user_id == uid))


def _person(conn: Any, uid: int, via: str, csrf: str = "") -> Person | None:
    row = conn.execute(select(User.name, User.role, User.active).where(User.id == uid)).first()
    if row is None or not row.active:
        return None
    slugs = conn.execute(
        select(Site.slug).join(UserSite, UserSite.site_id == Site.id).where(UserSite.user_id == uid)
    ).scalars()
    return Person(uid, row.name, row.role, frozenset(slugs), via, csrf)


def person_named(engine: Engine, name: str) -> Person | None:
    """The active person called `name`, with their role and sites; None when there is none."""
    with engine.connect() as c:
        uid = c.execute(select(User.id).where(User.name == name)).scalar()
        return None if uid is None else _person(c, int(uid), "session")


def list_users(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as c:
        users = c.execute(select(User.id, User.name, User.role, User.active).order_by(User.name)).all()
        sites = c.execute(select(UserSite.user_id, Site.slug).join(Site, Site.id == UserSite.site_id)).all()
    by_user: dict[int, list[str]] = {}
    for uid, slug in sites:
        by_user.setdefault(uid, []).append(slug)
    return [
        {"name": u.name, "role": u.role, "active": u.active, "sites": sorted(by_user.get(u.id, []))}
        for u in users
    ]


def authenticate(engine: Engine, name: str, password: str) -> Person | None:
    with engine.connect() as c:
        row = c.execute(select(User.id, User.password_hash, User.active).where(User.name == name)).first()
        if row is None:
            burn_time(password)
            return None
        if not verify_password(password, row.password_hash) or not row.active:
            return None
        return _person(c, row.id, "session")


# -- browser sessions -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NewSession:
    cookie: str  # the secret for the browser; only its digest is stored
    csrf: str


def create_session(engine: Engine, user_id: int, now: float | None = None) -> NewSession:
    now = time.time() if now is None else now
    cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    with engine.connect() as c, writer(c).begin():
        c.execute(delete(AuthSession).where(AuthSession.expires_at < now))
        c.execute(
            insert(AuthSession).values(
                id=digest(cookie),
                user_id=user_id,
                csrf=csrf,
                created_at=now,
                expires_at=now + SESSION_SECONDS,
            )
        )
    return NewSession(cookie, csrf)


def session_person(engine: Engine, cookie: str, now: float | None = None) -> Person | None:
    now = time.time() if now is None else now
    with engine.connect() as c:
        row = c.execute(
            select(AuthSession.user_id, AuthSession.csrf, AuthSession.expires_at).where(
                AuthSession.id == digest(cookie)
            )
        ).first()
        if row is None or row.expires_at <= now:
            return None
        return _person(c, row.user_id, "session", row.csrf)


def end_session(engine: Engine, cookie: str) -> None:
    with engine.connect() as c, writer(c).begin():
        c.execute(delete(AuthSession).where(AuthSession.id == digest(cookie)))


# -- API tokens ---------------------------------------------------------------------------------------
def issue_api_token(engine: Engine, user: str, name: str = "integration") -> str:
    """A new bearer token acting as `user` (name). Returned once; only its digest is kept."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with engine.connect() as c, writer(c).begin():
        uid = _uid(c, user)
        c.execute(
            insert(ApiToken).values(
                user_id=uid,
                name=name[:80] or "integration",
                token_hash=digest(token),
                prefix=token[:10],
                created_at=time.time(),
                revoked=False,
            )
        )
    return token


def token_person(engine: Engine, token: str) -> Person | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    with engine.connect() as c:
        row = c.execute(
            select(ApiToken.id, ApiToken.user_id, ApiToken.last_used_at).where(
                ApiToken.token_hash == digest(token), ApiToken.revoked.is_(False)
            )
        ).first()
        if row is None:
            return None
        person = _person(c, row.user_id, "token")
    now = time.time()
    # "Last used" to the minute is enough; writing on every call would queue API reads behind the
    # redemption writer on SQLite.
    if person is not None and (row.last_used_at is None or now - row.last_used_at >= 60):
        with engine.connect() as c, writer(c).begin():
            c.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
    return person


def list_tokens(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as c:
        rows = c.execute(
            select(
                ApiToken.id,
                User.name.label("user"),
                ApiToken.name,
                ApiToken.prefix,
                ApiToken.created_at,
                ApiToken.last_used_at,
                ApiToken.revoked,
            )
            .join(User, User.id == ApiToken.user_id)
            .order_by(ApiToken.id)
        ).all()
    return [dict(r._mapping) for r in rows]


def revoke_token(engine: Engine, token_id: int) -> None:
    with engine.connect() as c, writer(c).begin():
        if c.execute(update(ApiToken).where(ApiToken.id == token_id).values(revoked=True)).rowcount != 1:
            raise NotFound(f"no token {token_id}")


# -- first start ----------------------------------------------------------------------------------------
def ensure_owner(engine: Engine, var_dir: Path, password: str | None = None) -> str | None:
    """When nobody can sign in yet, create user `owner`.

    The password is `password`, else env OWNER_PASSWORD, else a random one that is returned (for the
    start banner) and written to VAR_DIR/owner-password.txt (mode 0600). Returns None when users exist
    or the password came from the caller/environment.
    """
    with engine.connect() as c:
        if c.execute(select(User.id).limit(1)).first() is not None:
            return None
    given = password or os.environ.get("OWNER_PASSWORD") or None
    secret = given or secrets.token_urlsafe(12)
    try:
        create_user(engine, "owner", secret, "owner")
    except Conflict:
        return None  # another process won the race
    if given:
        log.info("console user 'owner' created with the password from OWNER_PASSWORD")
        return None
    path = Path(var_dir) / FIRST_PASSWORD_FILE
    write_secret(path, secret + "\n")
    log.warning("console user 'owner' created; its password is in %s (removed at the first sign-in)", path)
    return secret


def forget_first_password(var_dir: Path, person: Person) -> None:
    """Once the first owner has signed in, the password file has done its job: it goes, so the password
    does not lie around in the data folder (and in its backups)."""
    path = Path(var_dir) / FIRST_PASSWORD_FILE
    if person.name == "owner" and path.exists():
        path.unlink(missing_ok=True)
        log.info("removed %s after the owner's first sign-in", path)
