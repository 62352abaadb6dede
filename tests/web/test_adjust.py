# Refund and cancel (managers) and revert with a reason (supervisors) from the order page, via gateway.services.adjustments.
from __future__ import annotations

import secrets

from playwright.sync_api import expect

from tests.web.conftest import OWNER_PASSWORD, Console


def _redeem(console: Console, code: str, qty: int) -> None:
    r = console.gw.api(
        "POST",
        "/api/redeem",
        json={"request_id": secrets.token_hex(8), "code": code, "site": "s1", "qty": qty, "by": "desk"},
    )
    assert r.status_code == 200 and r.json()["ok"], r.text


def test_supervisor_reverts_and_manager_refunds_and_cancels(console: Console) -> None:
    _redeem(console, "HX-TEST-FAMILY-5", 2)
    sup = console.as_user("super", width=360)
    # From the live feed to the order's page.
    sup.get_by_role("link", name="HX-TEST-FAMILY-5").first.click()
    expect(sup.get_by_test_id("left")).to_contain_text("3 left")
    expect(sup.get_by_role("button", name="Refund unused units")).to_have_count(0)  # managers only
    row = sup.locator("tr[data-redemption]").first
    row.get_by_label("Revert reason").fill("scanned the wrong ticket")
    row.get_by_role("button", name="Revert").click()
    expect(sup.get_by_role("status")).to_contain_text("Saved.")
    expect(sup.get_by_test_id("left")).to_contain_text("5 left")
    assert console.gw.api("GET", "/api/orders/HX-TEST-FAMILY-5").json()["used"] == 0
    # The reverted line is marked and cannot be reverted twice.
    expect(sup.locator("tr[data-redemption]").filter(has_text="undone")).to_have_count(1)
    # A supervisor cannot refund by posting the form directly.
    csrf = sup.locator('meta[name="csrf"]').get_attribute("content") or ""
    r = sup.request.post("/console/orders/HX-TEST-FAMILY-5/refund", form={"csrf": csrf, "reason": "x"})
    assert r.status == 403

    _redeem(console, "HX-TEST-FAMILY-5", 1)
    mgr = console.as_user("manager")
    mgr.goto("/console/orders/HX-TEST-FAMILY-5")
    units = mgr.get_by_label("Units to refund (empty: all unused)")
    units.evaluate("el => el.removeAttribute('max')")  # the browser would refuse; prove the server does too
    units.fill("5")
    mgr.get_by_label("Refund reason").fill("customer left early")
    mgr.get_by_role("button", name="Refund unused units").click()
    # Only unredeemed units can be refunded: a clear error, nothing changed.
    expect(mgr.get_by_test_id("error")).to_contain_text("only 4 unredeemed unit")
    assert console.gw.api("GET", "/api/orders/HX-TEST-FAMILY-5").json()["refunded"] == 0
    mgr.get_by_label("Units to refund (empty: all unused)").fill("2")
    mgr.get_by_label("Refund reason").fill("two stayed home")
    mgr.get_by_role("button", name="Refund unused units").click()
    expect(mgr.get_by_test_id("left")).to_contain_text("2 left")
    assert console.gw.api("GET", "/api/orders/HX-TEST-FAMILY-5").json()["refunded"] == 2

    # An order valid everywhere (no site) is an owner's to cancel, not a site manager's.
    mgr.goto("/console/orders/HX-TEST-ANYWHERE")
    expect(mgr.get_by_role("button", name="Cancel order")).to_have_count(0)
    csrf = mgr.locator('meta[name="csrf"]').get_attribute("content") or ""
    r = mgr.request.post("/console/orders/HX-TEST-ANYWHERE/cancel", form={"csrf": csrf, "reason": "x"})
    assert r.status == 403
    boss = console.as_user("owner", password=OWNER_PASSWORD)
    boss.goto("/console/orders/HX-TEST-ANYWHERE")
    boss.get_by_label("Cancel reason").fill("duplicate sale")
    boss.get_by_role("button", name="Cancel order").click()
    expect(boss.get_by_role("status")).to_contain_text("Saved.")
    assert console.gw.api("GET", "/api/orders/HX-TEST-ANYWHERE").json()["status"] == "cancelled"
    # The verifier's redeem of a cancelled order is denied with the reason.
    ver = console.as_user("verifier")
    ver.get_by_label("Code").fill("HX-TEST-ANYWHERE")
    ver.get_by_role("button", name="Look up").click()
    ver.get_by_role("button", name="Confirm redemption").click()
    expect(ver.get_by_test_id("verdict")).to_have_attribute("data-reason", "CANCELLED")
