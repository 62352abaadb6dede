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

from gateway.domain.errors import Conflict, NotFound, ValidationFailed
from gateway.domain.passwords import burn_time, hash_password, verify_password
from gateway.domain.roles import NAME_PATTERN, RESERVED_NAMES, ROLES, Person
from gateway.services.local_access import write_secret
from gateway.services.ports.database import Database, Tx

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


def _site_ids(tx: Tx, sites: list[str]) -> list[int]:
    found = tx.sites.ids()
    missing = [s for s in sites if s not in found]
    if missing:
        raise ValidationFailed(f"unknown site(s): {', '.join(missing)}", field="sites")
    return [found[s] for s in sites]


def create_user(db: Database, name: str, password: str, role: str, sites: list[str] | None = None) -> int:
    """Create a person; returns the user id. Owners act on every site, so their `sites` are ignored."""
    _check(name, role, password)
    with db.write() as tx:
        if tx.people.id_of(name) is not None:
            raise Conflict(f"user {name!r} exists", name=name)
        ids = _site_ids(tx, list(sites or [])) if role != "owner" else []
        uid = tx.people.add(name, hash_password(password), role, time.time())
        tx.people.add_sites(uid, ids)
    return uid


def _uid(tx: Tx, name: str) -> int:
    uid = tx.people.id_of(name)
    if uid is None:
        raise NotFound(f"no user {name!r}", name=name)
    return uid


def update_user(
    db: Database,
    name: str,
    *,
    role: str | None = None,
    sites: list[str] | None = None,
    active: bool | None = None,
) -> None:
    with db.write() as tx:
        uid = _uid(tx, name)
        values: dict[str, Any] = {}
        if role is not None:
            _check(name, role, None)
            values["role"] = role
        if active is not None:
            values["active"] = active
        if values:
            tx.people.change(uid, values)
        if sites is not None:
            ids = _site_ids(tx, sites)
            tx.people.clear_sites(uid)
            tx.people.add_sites(uid, ids)
        if active is False or role is not None:
            # A demoted or disabled person must not keep what their old sessions allowed.
            tx.sessions.end_all(uid)


def set_password(db: Database, name: str, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise ValidationFailed(f"password: at least {MIN_PASSWORD} characters", field="password")
    with db.write() as tx:
        uid = _uid(tx, name)
        tx.people.change(uid, {"password_hash": hash_password(password)})
        tx.sessions.end_all(uid)


def person_named(db: Database, name: str) -> Person | None:
    """The active person called `name`, with their role and sites; None when there is none."""
    with db.read() as tx:
        uid = tx.people.id_of(name)
        return None if uid is None else tx.people.person(uid, "session")


def list_users(db: Database) -> list[dict[str, Any]]:
    with db.read() as tx:
        return tx.people.listing()


def authenticate(db: Database, name: str, password: str) -> Person | None:
    with db.read() as tx:
        row = tx.people.login(name)
        if row is None:
            burn_time(password)
            return None
        uid, password_hash, active = row
        if not verify_password(password, password_hash) or not active:
            return None
        return tx.people.person(uid, "session")


# -- browser sessions -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class NewSession:
    cookie: str  # the secret for the browser; only its digest is stored
    csrf: str


def create_session(db: Database, user_id: int, now: float | None = None) -> NewSession:
    now = time.time() if now is None else now
    cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    with db.write() as tx:
        tx.sessions.start(digest(cookie), user_id, csrf, now, now + SESSION_SECONDS)
    return NewSession(cookie, csrf)


def session_person(db: Database, cookie: str, now: float | None = None) -> Person | None:
    now = time.time() if now is None else now
    with db.read() as tx:
        row = tx.sessions.find(digest(cookie))
        if row is None or row[2] <= now:
            return None
        return tx.people.person(row[0], "session", row[1])


def end_session(db: Database, cookie: str) -> None:
    with db.write() as tx:
        tx.sessions.end(digest(cookie))


# -- API tokens ---------------------------------------------------------------------------------------
def issue_api_token(db: Database, user: str, name: str = "integration") -> str:
    """A new bearer token acting as `user` (name). Returned once; only its digest is kept."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.write() as tx:
        uid = _uid(tx, user)
        tx.tokens.add(uid, name[:80] or "integration", digest(token), token[:10], time.time())
    return token


def token_person(db: Database, token: str) -> Person | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    with db.read() as tx:
        row = tx.tokens.find(digest(token))
        if row is None:
            return None
        token_id, uid, last_used_at = row
        person = tx.people.person(uid, "token")
    now = time.time()
    # "Last used" to the minute is enough; writing on every call would queue API reads behind the
    # redemption writer on SQLite.
    if person is not None and (last_used_at is None or now - last_used_at >= 60):
        with db.write() as tx:
            tx.tokens.touch(token_id, now)
    return person


def list_tokens(db: Database) -> list[dict[str, Any]]:
    with db.read() as tx:
        return tx.tokens.listing()


def revoke_token(db: Database, token_id: int) -> None:
    with db.write() as tx:
        if not tx.tokens.revoke(token_id):
            raise NotFound(f"no token {token_id}")


# -- first start ----------------------------------------------------------------------------------------
def ensure_owner(db: Database, var_dir: Path, password: str | None = None) -> str | None:
    """When nobody can sign in yet, create user `owner`.

    The password is `password`, else env OWNER_PASSWORD, else a random one that is returned (for the
    start banner) and written to VAR_DIR/owner-password.txt (mode 0600). Returns None when users exist
    or the password came from the caller/environment.
    """
    with db.read() as tx:
        if not tx.people.empty():
            return None
    given = password or os.environ.get("OWNER_PASSWORD") or None
    secret = given or secrets.token_urlsafe(12)
    try:
        create_user(db, "owner", secret, "owner")
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
