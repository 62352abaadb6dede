# The one auth dependency of the HTTP edges: who is calling, their role, their sites, CSRF on changes.
from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from gateway.domain.errors import Forbidden, NotAuthenticated, NotFound
from gateway.domain.roles import LOCAL_NAME, ROLES, Person
from gateway.services.accounts import session_person, token_person
from gateway.services.guessing import TypedGuard, looked_up
from gateway.services.local_access import LOCAL_PREFIX
from gateway.services.ports.database import Database

SESSION_COOKIE = "hx_session"
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
# Who holds the gateway's local token (VAR_DIR/local-token, readable only by the gateway's user): the
# CLI and the tools on the gateway's own machine. It is an owner; its audit name is its own.
LOCAL = Person(id=0, name=LOCAL_NAME, role="owner", sites=frozenset(), via="token")


def _db(request: Request) -> Database:
    db: Database = request.app.state.rt.db
    return db


def optional_user(request: Request) -> Person | None:
    """The caller, or None. A bearer token wins over a cookie; results are cached on the request."""
    if hasattr(request.state, "person"):
        cached: Person | None = request.state.person
        return cached
    person: Person | None = None
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        sent = auth[7:].strip()
        if sent.startswith(LOCAL_PREFIX):
            local: str = request.app.state.rt.local_token
            person = LOCAL if local and hmac.compare_digest(sent.encode(), local.encode()) else None
        else:
            person = token_person(_db(request), sent)
        if person is None:
            raise NotAuthenticated("the API token is unknown or revoked")
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            person = session_person(_db(request), cookie)
    request.state.person = person
    return person


def source_of(request: Request) -> str:
    """The client's address: the peer, or what a configured proxy (TRUSTED_PROXIES) says it forwarded."""
    return request.client.host if request.client else "?"


def csrf_ok(person: Person, sent: Any) -> bool:
    """A session's state change must echo that session's CSRF token."""
    return isinstance(sent, str) and bool(person.csrf) and hmac.compare_digest(sent, person.csrf)


@dataclass(frozen=True)
class Surface:
    """How one edge speaks: where a browser session sends its CSRF token and what each refusal raises
    (the REST API answers in its one JSON error shape, the console with its sign-in redirect and pages)."""

    csrf_token: Callable[[Request], Awaitable[Any]]
    unauthenticated: Callable[[Request, NotAuthenticated | None], Exception]
    forbidden: Callable[[str, dict[str, Any]], Exception]
    csrf_failed: Callable[[], Exception]


async def _header_token(request: Request) -> Any:
    # REST bodies stay untouched (an upload is read by its route): the token travels in a header.
    return request.headers.get("x-csrf-token")


def _rest_unauthenticated(request: Request, err: NotAuthenticated | None) -> Exception:
    return err or NotAuthenticated("sign in or send an API token (Authorization: Bearer ...)")


REST = Surface(
    csrf_token=_header_token,
    unauthenticated=_rest_unauthenticated,
    forbidden=lambda message, details: Forbidden(message, **details),
    csrf_failed=lambda: Forbidden("missing or wrong X-CSRF-Token for a signed-in browser session"),
)


def caller(role: str, surface: Surface = REST) -> Callable[[Request], Awaitable[Person]]:
    """Dependency: the caller, who must hold `role` or above (verifier < supervisor < manager < owner).

    Callers are people signed in to the console (cookie; state changes must echo the session's CSRF
    token), integrations with `Authorization: Bearer hxt_...`, or the gateway's own tools with the local
    token (`Authorization: Bearer hxl_...` from VAR_DIR/local-token). Where a request comes from grants
    nothing: a proxy, a tunnel or another user on the same machine is a stranger without a credential.
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role}")

    async def dep(request: Request) -> Person:
        try:
            person = await run_in_threadpool(optional_user, request)  # a database read: off the event loop
        except NotAuthenticated as err:
            raise surface.unauthenticated(request, err) from None
        if person is None:
            raise surface.unauthenticated(request, None)
        if not person.at_least(role):
            raise surface.forbidden(f"needs role {role} or above", {"role": person.role})
        # Only sessions need it (a browser never attaches a bearer token on its own).
        unsafe = request.method in UNSAFE and person.via != "token"
        if unsafe and not csrf_ok(person, await surface.csrf_token(request)):
            raise surface.csrf_failed()
        return person

    return dep


def require_site(person: Person, slug: str | None, surface: Surface = REST) -> None:
    """Refuse unless `person` may act on site `slug` (the site of a body, a device or an order)."""
    if not person.may_site(slug):
        raise surface.forbidden(f"not allowed at site {slug!r}", {"site": slug})


def require_order(person: Person, order: dict[str, Any], asked: str) -> dict[str, Any]:
    """An order another site's people may not see answers like an unknown code (no existence oracle).
    Orders valid everywhere (no site) are visible to everyone who may look orders up."""
    site = order.get("site")
    if site is not None and not person.sees_site(site):
        raise NotFound(f"no order with code {asked!r}", code=asked)
    return order


def order_looked_up(
    guard: TypedGuard, db: Database, who: Person, request: Request, code: str, *, console: bool = False
) -> dict[str, Any]:
    """Every look-up of an order by its code (REST and console): unknown codes and orders of sites the
    caller may not see are one answer (404) and one recorded miss, limited like typed guesses."""

    sees = who.sees_site if console else who.sees_order
    limited = who is not LOCAL
    return looked_up(guard, db, who.name, source_of(request), code, limited=limited, sees=sees)


# Type aliases for routes that need the caller: `who: AsSupervisor` both checks the role and hands it over.
AsVerifier = Annotated[Person, Depends(caller("verifier"))]
AsSupervisor = Annotated[Person, Depends(caller("supervisor"))]
AsManager = Annotated[Person, Depends(caller("manager"))]
