# Page guards: who may open a console page (else sign-in redirect or a 403 page) and CSRF on forms.
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Request

from gateway.domain.errors import HexiaoError
from gateway.domain.roles import Person
from gateway.entrypoints.http.auth import optional_user
from gateway.entrypoints.runtime import Runtime


class SignInFirst(Exception):
    """Raised by page guards; the console turns it into a redirect to the sign-in page."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class PageForbidden(Exception):
    """Raised by page guards and handlers; the console renders a 403 page."""


class CsrfFailed(Exception):
    """A state-changing form came without the session's CSRF token: 403, nothing changed."""


def page_user(role: str) -> Callable[[Request], Person]:
    """Dependency for pages: the signed-in person holding `role` or above."""

    def dep(request: Request) -> Person:
        try:
            person = optional_user(request)
        except HexiaoError:
            person = None
        if person is None:
            url = request.url.path + (("?" + request.url.query) if request.url.query else "")
            raise SignInFirst(url)
        if not person.at_least(role):
            raise PageForbidden()
        return person

    return dep


def check_csrf(person: Person, form: Any) -> None:
    from gateway.entrypoints.http.auth import csrf_ok

    if not csrf_ok(person, form.get("csrf")):
        raise CsrfFailed()


def rt_of(request: Request) -> Runtime:
    rt: Runtime = request.app.state.rt
    return rt


def safe_next(url: str | None, default: str = "/console") -> str:
    """Only same-site paths: an attacker's link must not bounce a fresh sign-in to another host."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return default
    return url
