# A verifier redeems a typed code on a phone-sized screen: same rules and verdicts as a device scan.
from __future__ import annotations

from playwright.sync_api import expect

from tests.web.conftest import Console, Shot, no_horizontal_overflow


def test_verifier_redeems_typed_code_on_a_phone(console: Console, shot: Shot) -> None:
    page = console.as_user("verifier", width=360)
    assert page.url.endswith("/console/redeem")
    expect(page.get_by_label("Code")).to_be_focused()
    # Keyboard only: type the code, Enter looks it up.
    page.keyboard.type("HX-TEST-FAMILY-5")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Order: Family Day Pass")).to_be_visible()
    expect(page.get_by_test_id("left")).to_contain_text("5 left")
    page.get_by_role("button", name="Increase").click()
    page.get_by_role("button", name="Increase").click()
    page.get_by_role("button", name="Decrease").click()
    expect(page.get_by_label("Quantity")).to_have_value("2")
    assert no_horizontal_overflow(page)
    shot(page, "redeem", full_page=True)
    page.get_by_role("button", name="Confirm redemption").click()
    verdict = page.get_by_test_id("verdict")
    expect(verdict).to_have_attribute("data-reason", "OK")
    expect(verdict).to_contain_text("3 of 5 left")
    assert no_horizontal_overflow(page)
    shot(page, "redeem-ok", full_page=True)
    order = console.gw.api("GET", "/api/orders/HX-TEST-FAMILY-5").json()
    assert order["used"] == 2
    # The ledger attributes it to the person.
    items = console.gw.api("GET", "/api/redemptions", params={"code": "HX-TEST-FAMILY-5"}).json()["items"]
    assert [(i["device"], i["qty"], i["reason"]) for i in items] == [("web-verifier", 2, "OK")]

    # The same form sent again (double tap, resubmitted POST) carries the same request id: no second redemption.
    page.go_back()
    form = {
        name: page.locator(f'form[method="post"] input[name="{name}"]').last.get_attribute("value") or ""
        for name in ("csrf", "code", "site", "request_id")
    }
    page.get_by_role("button", name="Confirm redemption").click()
    expect(page.get_by_test_id("verdict")).to_be_visible()
    used = console.gw.api("GET", "/api/orders/HX-TEST-FAMILY-5").json()["used"]
    r = page.request.post("/console/redeem", form={**form, "qty": "1"})
    assert r.ok
    assert console.gw.api("GET", "/api/orders/HX-TEST-FAMILY-5").json()["used"] == used


def test_denials_show_the_reason(console: Console) -> None:
    page = console.as_user("verifier", width=360)
    for _ in range(2):
        page.get_by_label("Code").fill("HX-TEST-SINGLE")
        page.get_by_role("button", name="Look up").click()
        page.get_by_role("button", name="Confirm redemption").click()
    verdict = page.get_by_test_id("verdict")
    expect(verdict).to_have_attribute("data-reason", "ALREADY_USED")
    expect(verdict).to_contain_text("ALREADY USED")
    page.get_by_label("Code").fill("NO-SUCH-CODE")
    page.get_by_role("button", name="Look up").click()
    expect(page.get_by_test_id("error")).to_have_text("No order has this code.")
    # Asking for more than is left: QTY_EXCEEDED, nothing redeemed.
    page.get_by_label("Code").fill("HX-TEST-ANYWHERE")
    page.get_by_role("button", name="Look up").click()
    page.get_by_label("Quantity").evaluate("el => el.removeAttribute('max')")
    page.get_by_label("Quantity").fill("7")
    page.get_by_role("button", name="Confirm redemption").click()
    expect(page.get_by_test_id("verdict")).to_have_attribute("data-reason", "QTY_EXCEEDED")
    assert console.gw.api("GET", "/api/orders/HX-TEST-ANYWHERE").json()["used"] == 0


def test_focus_is_visible_and_language_switches(console: Console, shot: Shot) -> None:
    page = console.page(width=360, lang="zh-CN")
    page.goto("/console/login")
    expect(page.get_by_role("heading", name="登录")).to_be_visible()
    shot(page, "sign-in-zh")
    page.keyboard.press("Tab")
    outline = page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineWidth]; }"
    )
    assert outline[0] != "none" and outline[1] != "0px", outline
    page.get_by_role("link", name="English").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_role("link", name="中文").click()
    expect(page.get_by_role("heading", name="登录")).to_be_visible()
    console.sign_in(page, "verifier")
    expect(page.get_by_role("button", name="查询")).to_be_visible()
    assert no_horizontal_overflow(page)


def test_voucher_by_short_code_and_amount(console: Console) -> None:
    short = console.gw.api("GET", "/api/orders/HX-TEST-VOUCHER").json()["short_code"]
    assert short
    page = console.as_user("verifier", width=360)
    page.get_by_label("Code").fill(short.lower().replace("-", " "))  # as read aloud and typed sloppily
    page.get_by_role("button", name="Look up").click()
    expect(page.get_by_role("heading", name="Order: Cash Voucher 100")).to_be_visible()
    expect(page.get_by_test_id("left")).to_have_text("¥100.00")
    page.get_by_label("Amount (yuan)").fill("12.50")
    page.get_by_role("button", name="Confirm redemption").click()
    expect(page.get_by_test_id("verdict")).to_have_attribute("data-reason", "OK")
    assert console.gw.api("GET", "/api/orders/HX-TEST-VOUCHER").json()["used"] == 1250
    assert no_horizontal_overflow(page)
