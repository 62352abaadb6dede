# The console's side of the one auth dependency: its sign-in redirect, 403 pages and form CSRF token.
from __future__ import annotations

from typing import Any

from fastapi import Request

from gateway.domain.errors import NotAuthenticated
from gateway.entrypoints.http.auth import Surface
from gateway.entrypoints.runtime import Runtime


class SignInFirst(Exception):
    """Raised by page guards; the console turns it into a redirect to the sign-in page."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class PageForbidden(Exception):
    """Raised by page guards and handlers; the console renders a 403 page."""


class CsrfFailed(Exception):
    """A state-changing form came without the session's CSRF token: 403, nothing changed."""


async def _form_token(request: Request) -> Any:
    # Console forms carry the token as a hidden field; Starlette keeps the parsed form for the page.
    return (await request.form()).get("csrf")


def _sign_in_first(request: Request, err: NotAuthenticated | None) -> Exception:
    # An unknown API token on a page is treated like no credentials at all: sign in.
    return SignInFirst(request.url.path + (("?" + request.url.query) if request.url.query else ""))


# Console pages take `person: Person = Depends(caller(role, CONSOLE))`.
CONSOLE = Surface(
    csrf_token=_form_token,
    unauthenticated=_sign_in_first,
    forbidden=lambda message, details: PageForbidden(),
    csrf_failed=CsrfFailed,
)


def rt_of(request: Request) -> Runtime:
    rt: Runtime = request.app.state.rt
    return rt


def safe_next(url: str | None, default: str = "/console") -> str:
    """Only same-site paths: an attacker's link must not bounce a fresh sign-in to another host."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return default
    return url
