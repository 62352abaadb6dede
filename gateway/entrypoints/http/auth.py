# FastAPI dependencies: who is calling (bearer API token or session cookie) and may they do this.
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request
from sqlalchemy import Engine

from gateway.domain.errors import HexiaoError
from gateway.domain.roles import ROLES, Person
from gateway.services.accounts import session_person, token_person

SESSION_COOKIE = "hx_session"


class NotAuthenticated(HexiaoError):
    code = "UNAUTHENTICATED"
    http_status = 401


class Forbidden(HexiaoError):
    code = "FORBIDDEN"
    http_status = 403


def _engine(request: Request) -> Engine:
    engine: Engine = request.app.state.rt.engine
    return engine


def optional_user(request: Request) -> Person | None:
    """The caller, or None. A bearer token wins over a cookie; results are cached on the request."""
    if hasattr(request.state, "person"):
        cached: Person | None = request.state.person
        return cached
    person: Person | None = None
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        person = token_person(_engine(request), auth[7:].strip())
        if person is None:
            raise NotAuthenticated("the API token is unknown or revoked")
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            person = session_person(_engine(request), cookie)
    request.state.person = person
    return person


def current_user(request: Request) -> Person:
    """Dependency for REST routes: 401 unless signed in or sending `Authorization: Bearer hxt_...`."""
    person = optional_user(request)
    if person is None:
        raise NotAuthenticated("sign in or send an API token")
    return person


def require(*roles: str) -> Callable[[Request], Person]:
    """Dependency factory: the caller must hold one of `roles` (owners always pass).

    `require("manager")` alone means "manager or owner"; use `at_least("supervisor")` for a ladder.
    """
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValueError(f"unknown roles {unknown}")

    def dep(request: Request) -> Person:
        person = current_user(request)
        if person.role != "owner" and person.role not in roles:
            raise Forbidden(f"needs role {' or '.join(roles)}", role=person.role)
        return person

    return dep


def at_least(role: str) -> Callable[[Request], Person]:
    """Dependency factory: the caller's role must be `role` or above (verifier < supervisor < manager < owner)."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role}")

    def dep(request: Request) -> Person:
        person = current_user(request)
        if not person.at_least(role):
            raise Forbidden(f"needs role {role} or above", role=person.role)
        return person

    return dep


def require_site(person: Person, slug: str | None) -> None:
    """Raise 403 unless `person` may act on site `slug`."""
    if not person.may_site(slug):
        raise Forbidden(f"not allowed at site {slug!r}", site=slug)


def csrf_ok(person: Person, sent: Any) -> bool:
    """Session callers must echo their session's CSRF token on every state change; token callers need not
    (a browser never attaches a bearer token on its own)."""
    import hmac

    if person.via == "token":
        return True
    return isinstance(sent, str) and bool(person.csrf) and hmac.compare_digest(sent, person.csrf)
