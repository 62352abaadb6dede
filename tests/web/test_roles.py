# Each role signs in and sees only its pages and its sites; others get a 403 page or the sign-in page.
from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from tests.web.conftest import Console

NAV = ["Live", "Redeem", "Orders", "Devices", "Updates", "Reports", "Users"]
SEES = {
    "owner": {"Live", "Redeem", "Orders", "Devices", "Updates", "Reports", "Users"},
    "manager": {"Live", "Redeem", "Orders", "Devices", "Updates", "Reports"},
    "super": {"Live", "Redeem"},
    "verifier": {"Redeem"},
}
PAGES = {
    "Live": "/console/live",
    "Redeem": "/console/redeem",
    "Orders": "/console/orders",
    "Devices": "/console/devices",
    "Updates": "/console/updates",
    "Reports": "/console/reports",
    "Users": "/console/users",
}


def test_signed_out_visitors_are_sent_to_sign_in(console: Console) -> None:
    page = console.page()
    for path in PAGES.values():
        page.goto(path)
        assert "/console/login" in page.url, path
    page.goto("/console/orders?q=HX")
    assert "next=/console/orders" in page.url
    r = httpx.get(console.http + "/console/live/events", follow_redirects=False)
    assert r.status_code == 303
    assert httpx.get(console.http + "/api/auth/me").status_code == 401


@pytest.mark.parametrize("who", ["owner", "manager", "super", "verifier"])
def test_each_role_sees_only_its_pages(console: Console, who: str) -> None:
    from tests.web.conftest import OWNER_PASSWORD, PASSWORD

    page = console.as_user(who, password=OWNER_PASSWORD if who == "owner" else PASSWORD)
    nav = page.get_by_role("navigation", name="main")
    for label in NAV:
        link = nav.get_by_role("link", name=label, exact=True)
        if label in SEES[who]:
            expect(link).to_be_visible()
        else:
            expect(link).to_have_count(0)
    for label, path in PAGES.items():
        resp = page.goto(path)
        assert resp is not None
        want = 200 if label in SEES[who] else 403
        assert resp.status == want, (who, path, resp.status)
    # Detail pages and exports follow the same ladder.
    for path, lowest in (
        ("/console/orders/HX-TEST-FAMILY-5", "super"),
        ("/console/reports/redemptions.csv", "manager"),
        ("/console/devices/nobody", "manager"),
    ):
        api = page.request.get(path, max_redirects=0)
        order = ["verifier", "super", "manager", "owner"]
        allowed = order.index(who) >= order.index(lowest)
        assert (api.status != 403) == allowed, (who, path, api.status)


def test_verifier_sees_no_personal_data_or_other_sites(console: Console) -> None:
    page = console.as_user("verifier")
    # Another site's order reads like an unknown code (no existence oracle): no title, no units.
    page.get_by_label("Code").fill("HX-TEST-TOUR-S2")
    page.get_by_label("Code").press("Enter")
    expect(page.get_by_test_id("error")).to_have_text("No order has this code.")
    expect(page.get_by_text("Old Town Walk")).to_have_count(0)
    # Only their own site is offered; posting another site is refused and redeems nothing.
    csrf = page.locator('meta[name="csrf"]').get_attribute("content")
    r = page.request.post(
        "/console/redeem", form={"csrf": csrf or "", "code": "HX-TEST-TOUR-S2", "site": "s2", "qty": "1"}
    )
    assert r.status == 403
    assert console.gw.api("GET", "/api/orders/HX-TEST-TOUR-S2").json()["used"] == 0
    me = page.request.get("/api/auth/me").json()
    assert me == {
        "name": "verifier",
        "role": "verifier",
        "sites": ["s1"],
        "all_sites": False,
        "via": "session",
    }


def test_manager_sees_only_own_sites_orders(console: Console) -> None:
    page = console.as_user("manager")
    page.goto("/console/orders")
    codes = set(page.locator("tbody td.mono").all_inner_texts())
    # s1 orders and orders valid everywhere, never s2's.
    assert codes == {"HX-TEST-FAMILY-5", "HX-TEST-SINGLE", "HX-TEST-ANYWHERE", "HX-TEST-VOUCHER"}
    # Another site's order reads like an unknown code (404), not "forbidden" (no existence oracle).
    assert page.goto("/console/orders/HX-TEST-TOUR-S2").status == 404  # type: ignore[union-attr]
    page.goto("/console/orders?q=family")
    expect(page.locator("tbody td.mono")).to_have_text(["HX-TEST-FAMILY-5"])
    expect(page.get_by_role("link", name=re.compile("HX-TEST-FAMILY-5"))).to_be_visible()
