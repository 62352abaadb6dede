# End to end with a camera board: the real firmware on the VM sees a rendered QR, the real gateway
# decodes its frames from the real broker, and the one redemption path answers.
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gateway.adapters.brokers.mosquitto import Mosquitto
from tests.e2e.conftest import DeviceFactory, Tap
from tests.e2e.helpers import TIMEOUT, create_orders, no_duplicates, redemptions, shown_frame, wait_ready
from tests.helpers import wait_for
from tools.sim.camera import SimCamera
from tools.sim.runner import FirmwareProcess

CAMERA = {"camera": {"trigger": "button", "fps": 8, "burst_ms": 2500}, "verdict_timeout_ms": 2000}


def state(dev: FirmwareProcess) -> str | None:
    screens = dev.events("screen")
    return str(screens[-1]["state"]) if screens else None


def attempt(dev: FirmwareProcess) -> tuple[str, int]:
    """Press ok at READY: the board starts an attempt; its scan id and the event mark before it."""
    wait_for(lambda: state(dev) == "READY", TIMEOUT, "READY")
    mark = dev.mark()
    dev.press("ok")
    ev = dev.wait_event(
        lambda e: e.get("ev") == "camera" and e.get("attempt") == "start",
        after=mark,
        timeout=TIMEOUT,
        what="an attempt",
    )
    return str(ev["sid"]), mark


def test_a_shown_code_redeems_once_then_already_used_and_no_code_gets_hints_never_a_verdict(
    tmp_path: Path,
    mosquitto: Mosquitto,
    gateway_factory: Callable[..., Any],
    devices: DeviceFactory,
    tap: Tap,
) -> None:
    gw = gateway_factory(mosquitto.url)
    create_orders(gw, ("E2E-CAM-1", "Day Pass", 1))
    cam = SimCamera(tmp_path / "camera")
    dev = devices("cam-1", env=cam.env, config=CAMERA)
    wait_ready(dev, tap)

    cam.show("E2E-CAM-1")
    sid, mark = attempt(dev)
    v = wait_for(lambda: tap.verdict("cam-1", sid), TIMEOUT, "the first showing's verdict")
    assert (v["ok"], v["reason"]) == (True, "OK")
    frame = shown_frame(dev, mark, v["l1"], v["l2"])
    assert frame.contains_text("** OK **")
    frames = [e for e in dev.events("frame")[0:] if e.get("sid") == sid]
    assert frames and all(e["sent"] for e in frames)

    # The holder shows it again: a new attempt, a new scan id, the same path's answer.
    dev.press("ok")  # dismiss the OK screen
    sid2, mark2 = attempt(dev)
    assert sid2 != sid
    v2 = wait_for(lambda: tap.verdict("cam-1", sid2), TIMEOUT, "the second showing's verdict")
    assert (v2["ok"], v2["reason"]) == (False, "ALREADY_USED")
    assert shown_frame(dev, mark2, v2["l1"], v2["l2"]).contains_text("DENIED")

    # Nothing in front of the camera: hints on the screen, never a verdict, then NO CODE.
    cam.hide()
    dev.press("ok")
    sid3, mark3 = attempt(dev)
    shown_frame(dev, mark3, "SHOW THE CODE", "to the camera")
    assert wait_for(lambda: [h for h in tap.of("hint", "cam-1") if h.get("sid") == sid3], TIMEOUT, "hints")
    dev.wait_event(
        lambda e: e.get("ev") == "screen" and e.get("l1") == "NO CODE",
        after=mark3,
        timeout=TIMEOUT,
        what="NO CODE",
    )
    assert tap.verdict("cam-1", sid3) is None

    rows = redemptions(gw, device="cam-1")
    no_duplicates(rows)
    assert sorted((r["scan_id"], r["reason"]) for r in rows) == sorted([(sid, "OK"), (sid2, "ALREADY_USED")])
    assert gw.api("GET", "/api/orders/E2E-CAM-1").json()["used"] == 1
    assert not dev.events("crash"), dev.events("crash")


def test_a_kiosk_camera_starts_on_motion_opens_once_and_does_not_redeem_a_code_left_in_view(
    tmp_path: Path,
    mosquitto: Mosquitto,
    gateway_factory: Callable[..., Any],
    devices: DeviceFactory,
    tap: Tap,
) -> None:
    gw = gateway_factory(mosquitto.url)
    create_orders(gw, ("E2E-KIOSK-1", "Pack", 5))
    cam = SimCamera(tmp_path / "camera")
    cfg = {"camera": {"trigger": "motion", "fps": 8, "burst_ms": 2500, "look_fps": 5}, "result_ms": 1000}
    dev = devices("kiosk-1", mode="turnstile", env=cam.env, config=cfg)
    wait_ready(dev, tap)
    wait_for(lambda: state(dev) == "READY", TIMEOUT, "READY")
    mark = dev.mark()
    cam.show("E2E-KIOSK-1")  # someone holds a phone up: the scene changes
    ev = dev.wait_event(
        lambda e: e.get("ev") == "camera" and e.get("attempt") == "start",
        after=mark,
        timeout=TIMEOUT,
        what="a motion-started attempt",
    )
    v = wait_for(lambda: tap.verdict("kiosk-1", str(ev["sid"])), TIMEOUT, "its verdict")
    assert (v["ok"], v["left"]) == (True, 4)
    dev.wait_event(
        lambda e: e.get("ev") == "relay_pin" and e.get("on") == 1,
        after=mark,
        timeout=TIMEOUT,
        what="the gate opening",
    )
    # The code stays in view past the rest: the scene does not change, nothing more is redeemed.
    wait_for(lambda: state(dev) == "READY", TIMEOUT, "READY again")
    time.sleep(2.5)  # a bounded wait for something that must not happen (rest 1 s, looks at 5 fps)
    starts = [e for e in dev.events("camera") if e.get("attempt") == "start"]
    assert len(starts) == 1, starts
    assert gw.api("GET", "/api/orders/E2E-KIOSK-1").json()["used"] == 1
