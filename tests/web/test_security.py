# CSRF on every form, the sign-in rate limit, session cookies' flags, and sign-out ending the session.
from __future__ import annotations

import re

import httpx
from playwright.sync_api import expect

from tests.web.conftest import PASSWORD, Console


def test_forms_without_the_csrf_token_change_nothing(console: Console) -> None:
    page = console.as_user("manager")
    before = console.gw.api("GET", "/api/orders/HX-TEST-FAMILY-5").json()["used"]
    # Cookies ride along (as in a cross-site form post), the token does not.
    for token in ("", "forged"):
        r = page.request.post(
            "/console/redeem", form={"csrf": token, "code": "HX-TEST-FAMILY-5", "site": "s1", "qty": "1"}
        )
        assert r.status == 403
        assert "The form expired" in r.text()
    assert console.gw.api("GET", "/api/orders/HX-TEST-FAMILY-5").json()["used"] == before
    owner = console.as_user("owner", password="owner-secret-1")
    r = owner.request.post(
        "/console/users", form={"action": "create", "name": "mallory", "password": "x" * 12, "role": "owner"}
    )
    assert r.status == 403
    r = page.request.post("/console/logout", form={})
    assert r.status == 403
    # The sign-in form has its own token (double-submit cookie): a bare POST is refused.
    bare = httpx.post(console.http + "/console/login", data={"name": "manager", "password": PASSWORD})
    assert bare.status_code == 403
    assert "hx_session" not in bare.cookies


def test_session_cookie_flags_and_sign_out(console: Console) -> None:
    page = console.as_user("verifier")
    cookie = next(c for c in page.context.cookies() if c["name"] == "hx_session")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert page.evaluate("document.cookie").find("hx_session") == -1
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    # The old cookie value is dead on the server too.
    r = httpx.get(console.http + "/api/auth/me", cookies={"hx_session": cookie["value"]})
    assert r.status_code == 401


def test_sign_in_is_rate_limited(console: Console) -> None:
    page = console.page()
    for _ in range(5):
        page.goto("/console/login")
        page.get_by_label("Name").fill("super")
        page.get_by_label("Password").fill("wrong-password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_have_text("Wrong name or password.")
    # Now even the right password is refused for a while.
    page.goto("/console/login")
    page.get_by_label("Name").fill("super")
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_response(re.compile("/console/login$")) as resp:
        page.get_by_role("button", name="Sign in").click()
    assert resp.value.status == 429
    expect(page.get_by_role("alert")).to_contain_text("Too many failed sign-ins")
    # Other people are not locked out by it.
    console.sign_in(page, "verifier")
    assert page.url.endswith("/console/redeem")
