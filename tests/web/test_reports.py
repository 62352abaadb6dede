# Orders, reports and CSV export as a manager sees them (own sites only); the owner's users page.
from __future__ import annotations

import csv
import io
import re
import secrets
from pathlib import Path

import httpx
from playwright.sync_api import expect

from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.services.accounts import create_user, issue_api_token
from tests.web.conftest import OWNER_PASSWORD, Console, Shot


def _redeem(console: Console, code: str, site: str, qty: int = 1) -> None:
    # The ledger names the caller: the front desk's own API token.
    token = DESK.get(console.http) or DESK.setdefault(console.http, _desk(console))
    r = console.gw.api(
        "POST",
        "/api/redeem",
        json={"request_id": secrets.token_hex(8), "code": code, "site": site, "qty": qty},
        headers={"authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text


DESK: dict[str, str] = {}


def _desk(console: Console) -> str:
    create_user(SqlDatabase(console.engine), "desk", "desk-password-1", "verifier", ["s1", "s2"])
    return issue_api_token(SqlDatabase(console.engine), "desk")


def test_reports_and_csv_export(console: Console, shot: Shot) -> None:
    _redeem(console, "HX-TEST-FAMILY-5", "s1", 3)
    _redeem(console, "HX-TEST-SINGLE", "s1")
    _redeem(console, "HX-TEST-SINGLE", "s1")  # ALREADY_USED
    _redeem(console, "HX-TEST-TOUR-S2", "s2")  # another site: not in the manager's report
    page = console.as_user("manager")
    page.goto("/console/reports")
    per_product = page.locator("section", has=page.get_by_role("heading", name="Per product"))
    expect(per_product.locator("tbody tr").first).to_contain_text("Family Day Pass")
    expect(per_product).not_to_contain_text("Old Town Walk")
    reasons = page.locator("section", has=page.get_by_role("heading", name="Failed scans by reason"))
    expect(reasons).to_contain_text("ALREADY_USED")
    expect(page.locator(".chart svg rect").first).to_be_attached()
    per_verifier = page.locator("section", has=page.get_by_role("heading", name="Per verifier"))
    expect(per_verifier.locator("tbody tr")).to_have_count(1)
    # The ledger names the caller (here the front desk's own token), never a body's `by` (docs/security.md).
    expect(per_verifier.locator("tbody tr td")).to_have_text(["desk", "2", "4", "0", "1"])
    settlement = page.locator("section", has=page.get_by_role("heading", name="Settlement"))
    expect(settlement.locator("tbody tr").first).to_contain_text("ticket")
    # The other exports (the gateway's report API) answer the signed-in manager, for their site only.
    href = page.get_by_role("link", name="Counts by verifier").get_attribute("href")
    assert href is not None
    by_verifier = page.request.get(href)
    assert by_verifier.ok, by_verifier.text()
    assert by_verifier.text().splitlines()[0].startswith("verifier,")
    shot(page, "reports", full_page=True)
    with page.expect_download() as dl:
        page.get_by_test_id("csv").click()
    rows = list(csv.DictReader(io.StringIO(Path(dl.value.path()).read_text())))
    assert sorted((r["code"], r["reason"], r["qty"]) for r in rows) == [
        ("HX-TEST-FAMILY-5", "OK", "3"),
        ("HX-TEST-SINGLE", "ALREADY_USED", "1"),
        ("HX-TEST-SINGLE", "OK", "1"),
    ]
    assert {r["site"] for r in rows} == {"s1"}
    # Order detail with its history and QR image.
    page.goto("/console/orders/HX-TEST-FAMILY-5")
    expect(page.get_by_test_id("left")).to_contain_text("2 left")
    expect(page.locator("table tbody tr")).to_have_count(1)
    qr = page.request.get("/console/orders/HX-TEST-FAMILY-5/qr.png")
    assert qr.ok and qr.body()[:8] == b"\x89PNG\r\n\x1a\n"
    expect(page.get_by_role("button", name="Refund unused units")).to_be_enabled()
    expect(page.get_by_role("button", name="Cancel order")).to_be_disabled()  # units were used
    shot(page, "order", full_page=True)
    page.goto("/console/orders")
    shot(page, "orders", full_page=True)


def test_owner_manages_people_and_api_tokens(console: Console, shot: Shot) -> None:
    page = console.as_user("owner", password=OWNER_PASSWORD)
    page.goto("/console/users")
    create = page.locator("section", has=page.get_by_role("heading", name="Create user"))
    create.get_by_label("Name").fill("lily")
    create.get_by_label("Password").fill("lily-pass-123")
    create.get_by_label("Role").select_option("verifier")
    create.get_by_label("s2").check()
    create.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    lily = console.as_user("lily", password="lily-pass-123")
    lily.get_by_label("Code").fill("HX-TEST-TOUR-S2")
    lily.get_by_role("button", name="Look up").click()
    expect(lily.get_by_role("heading", name="Order: Old Town Walk")).to_be_visible()

    # Promote lily to supervisor: her old session ends (roles are re-read), she signs in again.
    page.get_by_text("Edit lily").click()
    card = page.locator('details[data-user="lily"]')
    card.get_by_label("Role").select_option("supervisor")
    card.get_by_role("button", name="Save").click()
    lily.goto("/console/live")
    assert "/console/login" in lily.url
    # Reset her password; the new one works.
    page.get_by_text("Edit lily").click()
    card = page.locator('details[data-user="lily"]')
    card.get_by_label("New password").fill("lily-new-pass-9")
    card.get_by_role("button", name="Reset password").click()
    console.sign_in(lily, "lily", "lily-new-pass-9")
    assert lily.url.endswith("/console/live")

    # An API token for an integration: works as a bearer token, shown once, revocable.
    tokens = page.locator("section", has=page.get_by_role("heading", name="API tokens"))
    tokens.get_by_label("User").select_option("manager")
    tokens.get_by_label("Token name").fill("shop-sync")
    tokens.get_by_role("button", name="Create token").click()
    token = page.get_by_test_id("token").inner_text().strip()
    assert re.fullmatch(r"hxt_[A-Za-z0-9_-]{40,}", token)
    shot(page, "users", full_page=True)
    me = httpx.get(console.http + "/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json() == {
        "name": "manager",
        "role": "manager",
        "sites": ["s1"],
        "all_sites": False,
        "via": "token",
    }
    page.goto("/console/users")
    page.get_by_role("row", name=re.compile("shop-sync")).get_by_role("button", name="Revoke").click()
    assert (
        httpx.get(console.http + "/api/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )
    assert (
        httpx.get(console.http + "/api/auth/me", headers={"Authorization": "Bearer hxt_made-up"}).status_code
        == 401
    )
