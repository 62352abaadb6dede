# Who may call the REST API: API tokens and console sessions by role, and (optionally) the machine itself.
from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from gateway.domain.roles import Person
from gateway.entrypoints.http.auth import Forbidden, NotAuthenticated, csrf_ok, optional_user

LOCAL = Person(id=0, name="local", role="owner", sites=frozenset(), via="token")
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


def _loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_user(role: str) -> Callable[[Request], Person]:
    """Dependency: the caller must hold `role` or above.

    Callers are people signed in to the console (cookie; state changes must echo the CSRF token in
    `X-CSRF-Token`) or integrations with `Authorization: Bearer <token>`. With TRUST_LOOPBACK (the
    default), requests from the gateway's own machine without credentials act as the owner: whoever
    can reach 127.0.0.1 there can read the database file anyway. Turn it off when others share the host.
    """

    def dep(request: Request) -> Person:
        person = optional_user(request)
        if person is None:
            if request.app.state.rt.settings.trust_loopback and _loopback(request):
                return LOCAL
            raise NotAuthenticated("sign in or send an API token (Authorization: Bearer ...)")
        if request.method in UNSAFE and not csrf_ok(person, request.headers.get("x-csrf-token")):
            raise Forbidden("missing or wrong X-CSRF-Token for a signed-in browser session")
        if not person.at_least(role):
            raise Forbidden(f"needs role {role} or above", role=person.role)
        return person

    return dep


def may_site(person: Person, slug: str | None) -> None:
    if not person.may_site(slug):
        raise Forbidden(f"not allowed at site {slug!r}", site=slug)


# Type aliases for route signatures: `who: AsSupervisor` both checks the role and hands over the caller.
AsVerifier = Annotated[Person, Depends(api_user("verifier"))]
AsSupervisor = Annotated[Person, Depends(api_user("supervisor"))]
AsManager = Annotated[Person, Depends(api_user("manager"))]
AsOwner = Annotated[Person, Depends(api_user("owner"))]
