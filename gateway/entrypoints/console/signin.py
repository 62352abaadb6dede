# Sign-in, sign-out and the language switch; the console's landing redirect.
from __future__ import annotations

import secrets
import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway.domain.roles import Person
from gateway.domain.signin_limit import LoginLimiter
from gateway.entrypoints.console.guard import CONSOLE, CsrfFailed, rt_of, safe_next
from gateway.entrypoints.console.i18n import LANG_COOKIE, LANGS, translator
from gateway.entrypoints.console.render import lang_of, page
from gateway.entrypoints.http.auth import SESSION_COOKIE, caller, optional_user, source_of
from gateway.services.accounts import (
    SESSION_SECONDS,
    authenticate,
    create_session,
    end_session,
    forget_first_password,
)

router = APIRouter()
LOGIN_CSRF = "hx_login_csrf"
limiter = LoginLimiter()


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def home_of(person: Person) -> str:
    return "/console/live" if person.at_least("supervisor") else "/console/redeem"


@router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    return RedirectResponse("/console", status_code=303)


@router.get("/console", include_in_schema=False)
def console_home(request: Request) -> RedirectResponse:
    person = optional_user(request) if "authorization" not in request.headers else None
    return RedirectResponse(home_of(person) if person else "/console/login", status_code=303)


def _login_page(
    request: Request, error: str = "", name: str = "", next_url: str = "", status: int = 200
) -> Response:
    # Double-submit token: the sign-in form has no session yet, so its CSRF token lives in a cookie.
    token = request.cookies.get(LOGIN_CSRF) or secrets.token_urlsafe(24)
    resp = page(
        request,
        "login.html",
        None,
        status_code=status,
        error=error,
        username=name,
        next=safe_next(next_url, ""),
        login_csrf=token,
    )
    resp.set_cookie(
        LOGIN_CSRF, token, httponly=True, samesite="strict", secure=_secure(request), path="/console"
    )
    return resp


@router.get("/console/login", include_in_schema=False)
def login_form(request: Request, next: str = "") -> Response:
    person = optional_user(request) if "authorization" not in request.headers else None
    if person is not None:
        return RedirectResponse(safe_next(next, home_of(person)), status_code=303)
    return _login_page(request, next_url=next)


@router.post("/console/login", include_in_schema=False)
async def login(request: Request) -> Response:
    form = await request.form()
    t = translator(lang_of(request))
    name = str(form.get("name", "")).strip()[:30]
    password = str(form.get("password", ""))
    next_url = str(form.get("next", ""))
    cookie_token = request.cookies.get(LOGIN_CSRF, "")
    if not cookie_token or not secrets.compare_digest(cookie_token, str(form.get("csrf", ""))):
        return _login_page(request, t("The form expired. Please try again."), name, next_url, 403)
    addr = source_of(request)
    now = time.time()
    wait = limiter.retry_after(name, addr, now)
    if wait > 0:
        return _login_page(
            request,
            t("Too many failed sign-ins. Try again in {n} seconds.", n=int(wait) + 1),
            name,
            next_url,
            429,
        )
    rt = rt_of(request)
    person = authenticate(rt.db, name, password)
    if person is None:
        limiter.failed(name, addr, now)
        return _login_page(request, t("Wrong name or password."), name, next_url, 401)
    limiter.succeeded(name, addr)
    forget_first_password(rt.settings.var_dir, person)
    old = request.cookies.get(SESSION_COOKIE)
    if old:  # a sign-in always starts a fresh session; the previous cookie value dies with it
        end_session(rt.db, old)
    sess = create_session(rt.db, person.id, now)
    resp = RedirectResponse(safe_next(next_url, home_of(person)), status_code=303)
    resp.set_cookie(
        SESSION_COOKIE,
        sess.cookie,
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )
    resp.delete_cookie(LOGIN_CSRF, path="/console")
    return resp


@router.post("/console/logout", include_in_schema=False)
async def logout(request: Request, person: Person = Depends(caller("verifier", CONSOLE))) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        end_session(rt_of(request).db, cookie)
    resp = RedirectResponse("/console/login", status_code=303)
    resp.delete_cookie(SESSION_COOKIE, path="/")
    return resp


@router.get("/console/lang", include_in_schema=False)
def set_lang(request: Request, to: str = "en", next: str = "/console") -> Response:
    # A preference, not a state change on the server: a plain link is fine and keyboard-friendly.
    resp = RedirectResponse(safe_next(next), status_code=303)
    if to in LANGS:
        resp.set_cookie(
            LANG_COOKIE, to, max_age=365 * 86400, samesite="lax", secure=_secure(request), path="/"
        )
    return resp


def forbidden_page(request: Request, person: Person | None) -> HTMLResponse:
    t = translator(lang_of(request))
    return page(
        request, "error.html", person, 403, heading="403", message=t("You are not allowed to open this page.")
    )


__all__ = ["CsrfFailed", "forbidden_page", "router"]


@router.get("/api/auth/me", tags=["auth"])
def me(person: Person = Depends(caller("verifier"))) -> dict[str, object]:
    """Who the caller is (session cookie or `Authorization: Bearer hxt_...`): name, role, sites."""
    return {
        "name": person.name,
        "role": person.role,
        "sites": sorted(person.sites),
        "all_sites": person.all_sites,
        "via": person.via,
    }
