# A scan from an MQTT device appears live (SSE) on the Live page, in today's counters and on the device's
# screen mirror; devices and their status come from the real broker.
from __future__ import annotations

import json
import secrets

from playwright.sync_api import expect

from tests.gateway.mqtt_peer import Peer
from tests.web.conftest import OWNER_PASSWORD, Console, Shot, no_horizontal_overflow


def test_scan_from_a_device_appears_live(console: Console, shot: Shot) -> None:
    assert (
        console.gw.api(
            "POST", "/api/devices", json={"device": "gate-1", "site": "s1", "gate": "North"}
        ).status_code
        == 201
    )
    page = console.as_user("super")
    assert page.url.endswith("/console/live")
    expect(page.get_by_text("connected", exact=True)).to_be_visible()
    peer = Peer(console.broker.url, "gate-1", will=True)
    try:
        status = {
            "v": 1,
            "state": "online",
            "fw": "0.1.0",
            "board": "esp32-devkitc",
            "rssi": -58,
            "heap": 61440,
            "outbox": 0,
            "up": 12,
        }
        peer.publish("status", json.dumps(status), retain=True)
        peer.scan("1-1", "HX-TEST-FAMILY-5", qty=2)
        assert peer.wait_verdict("1-1")["ok"] is True
        row = page.locator("tbody[data-feed] tr").first
        expect(row).to_contain_text("HX-TEST-FAMILY-5")
        expect(row).to_contain_text("gate-1")
        expect(row).to_contain_text("North")
        expect(row).to_have_attribute("data-reason", "OK")
        counter = page.locator('tr[data-counter="s1|North"]')
        expect(counter.locator('[data-k="units"]')).to_have_text("2")
        peer.scan("1-2", "NOPE-NOT-A-CODE")
        assert peer.wait_verdict("1-2")["reason"] == "UNKNOWN_CODE"
        expect(page.locator("tbody[data-feed] tr").first).to_have_attribute("data-reason", "UNKNOWN_CODE")
        expect(counter.locator('[data-k="denied"]')).to_have_text("1")
        # A scan at another site is not shown to a supervisor of s1.
        console.gw.api("POST", "/api/devices", json={"device": "tour-1", "site": "s2", "gate": "Bus"})
        other = Peer(console.broker.url, "tour-1")
        other.scan("1-1", "HX-TEST-TOUR-S2")
        assert other.wait_verdict("1-1")["ok"] is True
        other.close()
        peer.scan("1-3", "HX-TEST-ANYWHERE")
        peer.wait_verdict("1-3")
        expect(page.locator("tbody[data-feed] tr").first).to_contain_text("HX-TEST-ANYWHERE")
        expect(page.locator("tbody[data-feed]")).not_to_contain_text("HX-TEST-TOUR-S2")
        # "Inside now" follows the gateway's entry/exit state of anti-passback orders.
        gate = {
            "code": "HX-TEST-GATE",
            "title": "Gate Pass",
            "quantity": 2,
            "site": "s1",
            "rules": {"passback": True},
        }
        assert console.gw.api("POST", "/api/orders", json={"orders": [gate]}).status_code == 201
        turnstile = Peer(console.broker.url, "turn-1")  # auto-registered at s1
        turnstile.scan("g-1", "HX-TEST-GATE")
        assert turnstile.wait_verdict("g-1")["ok"] is True
        expect(page.locator('[data-inside="s1"]')).to_have_text("1")
        turnstile.scan("g-2", "HX-TEST-GATE", direction="out")
        assert turnstile.wait_verdict("g-2")["ok"] is True
        expect(page.locator('[data-inside="s1"]')).to_have_text("0")
        turnstile.close()
        shot(page, "live", full_page=True)

        # The owner's device pages: fleet table with status, per-device page with the OLED mirror.
        owner = console.as_user("owner", password=OWNER_PASSWORD)
        owner.goto("/console/devices")
        fleet = owner.locator('tr[data-device="gate-1"]')
        expect(fleet).to_contain_text("online")
        expect(fleet).to_contain_text("0.1.0")
        expect(fleet).to_contain_text("-58")
        expect(fleet).to_contain_text("61440")
        shot(owner, "devices", full_page=True)
        owner.get_by_role("link", name="gate-1").click()
        oled = owner.get_by_test_id("oled")
        expect(oled).to_contain_text("OK City Voucher")
        expect(owner.get_by_text("connected", exact=True)).to_be_visible()
        peer.scan("1-4", "HX-TEST-SINGLE")
        v = peer.wait_verdict("1-4")
        expect(oled.locator("[data-l1]")).to_have_text(v["l1"])
        expect(oled.locator("[data-l2]")).to_have_text(v["l2"])
        shot(owner, "device", full_page=True)
        # A command goes out over MQTT to the device.
        got: list[bytes] = []
        peer.c.message_callback_add(peer.topic("cmd"), lambda c, u, m: got.append(bytes(m.payload)))
        peer.c.subscribe(peer.topic("cmd"), qos=1)
        owner.wait_for_timeout(300)
        owner.get_by_role("button", name="Beep").click()
        expect(owner.get_by_role("status").filter(has_text="Command sent.")).to_be_visible()
        from tests.helpers import wait_for

        wait_for(lambda: got, 10, "beep command")
        assert json.loads(got[0]) == {"v": 1, "cmd": "beep", "args": {"sound": "ok"}}
        # The console's command took the fleet's path: audited with who sent it, like a REST command.
        r = owner.request.get("/api/fleet/devices/gate-1")
        assert r.ok, r.text()
        sent = r.json()["commands"]
        assert [(c["cmd"], c["source"]) for c in sent] == [("beep", "console:owner")]
        # Power cut: the broker publishes the last will and the fleet table shows the device offline.
        peer.close(clean=False)
        from tests.helpers import wait_for as wait

        wait(lambda: not console.gw.api("GET", "/api/devices").json()[0]["online"], 30, "device offline")
        owner.goto("/console/devices")
        expect(owner.locator('tr[data-device="gate-1"]')).to_contain_text("offline")
    finally:
        peer.close()


def test_every_page_fits_a_phone(console: Console, shot: Shot) -> None:
    console.gw.api("POST", "/api/devices", json={"device": "gate-with-a-long-name-0123456789", "site": "s1"})
    for code, qty in (("HX-TEST-FAMILY-5", 2), ("HX-TEST-SINGLE", 1), ("HX-TEST-SINGLE", 1)):
        console.gw.api(
            "POST",
            "/api/redeem",
            json={"request_id": secrets.token_hex(8), "code": code, "site": "s1", "qty": qty, "by": "lily"},
        )
    page = console.as_user("owner", width=360, password=OWNER_PASSWORD)
    for path in (
        "/console/live",
        "/console/redeem?code=HX-TEST-FAMILY-5",
        "/console/orders",
        "/console/orders/HX-TEST-FAMILY-5",
        "/console/devices",
        "/console/devices/gate-with-a-long-name-0123456789",
        "/console/reports",
        "/console/users",
    ):
        page.goto(path)
        wide = page.evaluate(
            "() => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest('.table-wrap')).map(e => e.tagName + '.' + e.className + ' ' + (e.id || '') + ' ' + Math.round(e.getBoundingClientRect().right))"
        )
        assert no_horizontal_overflow(page), (path, wide)
    page.goto("/console/live")
    shot(page, "live-phone", full_page=True)


def test_gateway_stops_cleanly_with_live_pages_open(console: Console) -> None:
    """Open live streams end when the gateway is told to stop, so it exits by itself (no SIGKILL)."""
    page = console.as_user("owner", password=OWNER_PASSWORD)
    expect(page.get_by_text("connected", exact=True)).to_be_visible()
    proc = console.gw.proc
    assert proc is not None
    console.gw.stop()  # SIGINT, then SIGKILL only if still running after 15 s
    assert proc.returncode != -9, console.gw.log()[-2000:]
    expect(page.get_by_text("reconnecting…", exact=True)).to_be_visible()
