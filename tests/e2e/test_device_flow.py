# End to end: real gateway + real Mosquitto + the real firmware on the MicroPython VM, scanning via a pty.
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from gateway.adapters.brokers.mosquitto import Mosquitto
from tests.e2e.conftest import DeviceFactory, Tap
from tests.e2e.helpers import (
    TIMEOUT,
    create_orders,
    no_duplicates,
    redemptions,
    scan_and_verdict,
    scan_sid,
    settle,
    shown_frame,
    wait_ready,
    wait_verdict_for,
)
from tests.helpers import wait_for
from tools.sim import noise
from tools.sim.gm65 import Mode
from tools.sim.pty_scanner import PtyScanner
from tools.sim.runner import FirmwareProcess


def sounds_after(dev: FirmwareProcess, mark: int) -> list[str]:
    """Buzzer patterns the board played since ``mark``."""
    return [str(e.get("sound")) for e in dev.events()[mark:] if e.get("ev") == "buzzer"]


def test_scan_ok_then_already_used(
    mosquitto: Mosquitto, gateway_factory: Callable[..., Any], devices: DeviceFactory, tap: Tap
) -> None:
    gw = gateway_factory(mosquitto.url)
    create_orders(gw, ("E2E-SINGLE-1", "Day Pass", 1))
    dev = devices("dev-1")
    wait_ready(dev, tap)

    mark = dev.mark()
    sid, verdict, frame = scan_and_verdict(dev, tap, "E2E-SINGLE-1")
    assert verdict["ok"] is True and verdict["reason"] == "OK"
    # The pixels: both verdict lines drawn with the VM's 8x8 font, and no denial text.
    assert frame.contains_text("** OK **")  # the inverted OK screen
    assert not frame.contains_text("DENIED")
    wait_for(lambda: "ok" in sounds_after(dev, mark), TIMEOUT, "ok sound")

    mark = dev.mark()
    sid2, verdict2, frame2 = scan_and_verdict(dev, tap, "E2E-SINGLE-1")
    assert sid2 != sid
    assert verdict2["ok"] is False and verdict2["reason"] == "ALREADY_USED"
    assert frame2.contains_text("DENIED") and not frame2.contains_text(verdict["l1"])
    wait_for(lambda: "deny" in sounds_after(dev, mark), TIMEOUT, "deny sound")

    rows = redemptions(gw, device="dev-1")
    no_duplicates(rows)
    assert sorted((r["scan_id"], r["reason"]) for r in rows) == sorted([(sid, "OK"), (sid2, "ALREADY_USED")])
    assert dev.alive


def test_two_devices_race_for_a_single_use_code(
    mosquitto: Mosquitto, gateway_factory: Callable[..., Any], devices: DeviceFactory, tap: Tap
) -> None:
    gw = gateway_factory(mosquitto.url)
    create_orders(gw, ("E2E-RACE-1", "Concert", 1))
    a, b = devices("gate-a"), devices("gate-b")
    wait_ready(a, tap)
    wait_ready(b, tap)

    go = threading.Barrier(2)

    def scan(dev: FirmwareProcess) -> None:
        go.wait()
        dev.scan("E2E-RACE-1")

    threads = [threading.Thread(target=scan, args=(d,)) for d in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sids = {d.device: scan_sid(d, tap, "E2E-RACE-1", 0) for d in (a, b)}
    verdicts = {
        name: wait_for(lambda n=name, s=sid: tap.verdict(n, s), TIMEOUT, f"verdict for {name}")
        for name, sid in sids.items()
    }
    assert sorted(v["reason"] for v in verdicts.values()) == ["ALREADY_USED", "OK"]
    for dev in (a, b):
        v = verdicts[dev.device]
        shown_frame(dev, 0, v["l1"], v["l2"])

    rows = redemptions(gw, code="E2E-RACE-1")
    no_duplicates(rows)
    assert sum(1 for r in rows if r["ok"]) == 1
    assert len(rows) == 2


def test_outbox_drains_after_broker_restart_and_reboot(
    mosquitto: Mosquitto, gateway_factory: Callable[..., Any], devices: DeviceFactory, tap: Tap
) -> None:
    gw = gateway_factory(mosquitto.url)
    codes = [f"E2E-OUTBOX-{i}" for i in range(6)]
    create_orders(gw, *((c, "Museum", 1) for c in codes))
    a, b = devices("dev-a"), devices("dev-b")
    wait_ready(a, tap)
    wait_ready(b, tap)

    scan_and_verdict(a, tap, codes[0])  # online baseline

    mosquitto.stop()
    # Both devices notice and queue what is scanned meanwhile on their flash.
    for dev in (a, b):
        dev.wait_screen(lambda f: f.contains_text("OFFLINE"), timeout=TIMEOUT, what="OFFLINE screen")
    offline = {"dev-a": codes[1:4], "dev-b": codes[4:6]}
    queued: dict[str, tuple[str, str]] = {}  # code -> (device, scan id) as the firmware logged it
    for dev in (a, b):
        for code in offline[dev.device]:
            mark = dev.mark()
            assert dev.scan(code)
            ev = dev.wait_event(
                lambda e, c=code: e.get("ev") == "scan" and e.get("code") == c,
                after=mark,
                timeout=TIMEOUT,
                what=f"{code} queued on flash",
            )
            queued[code] = (dev.device, str(ev["sid"]))

    a.kill()  # power cut with three scans in its outbox
    mark = a.mark()
    a.start()  # reboot on the same flash: the outbox is still there
    a.wait_event(
        lambda e: e.get("ev") == "start" and e.get("outbox") == 3, after=mark, what="outbox after reboot"
    )
    mosquitto.start()  # same port, same persistence

    # Everything arrives exactly once and each code is redeemed once.
    def all_decided() -> list[dict[str, Any]] | None:
        rows = redemptions(gw)
        return rows if {r["code"] for r in rows} >= set(codes) else None

    rows = wait_for(all_decided, 45, "the outboxes to drain")
    no_duplicates(rows)
    assert sorted(r["code"] for r in rows) == sorted(codes)
    assert all(r["ok"] for r in rows), rows
    # The queued scans were decided under the ids they got when scanned, not re-issued after the reboot.
    decided = {r["code"]: (r["device"], r["scan_id"]) for r in rows}
    assert {c: decided[c] for c in queued} == queued
    # The devices end up online again with empty outboxes (asked for a fresh status over MQTT).
    for dev in (a, b):

        def drained(d: FirmwareProcess = dev) -> bool:
            seen = len(tap.of("status", d.device))
            tap.command(d.device, "status")
            wait_for(lambda: len(tap.of("status", d.device)) > seen, TIMEOUT, f"{d.device} status")
            last = tap.of("status", d.device)[-1]
            return bool(last.get("state") == "online" and last.get("outbox") == 0)

        wait_for(drained, TIMEOUT, f"{dev.device} online with an empty outbox", interval=0.5)


def test_garbage_on_the_scanner_uart_does_not_crash(
    mosquitto: Mosquitto, gateway_factory: Callable[..., Any], devices: DeviceFactory, tap: Tap
) -> None:
    gw = gateway_factory(mosquitto.url)
    create_orders(gw, ("E2E-AFTER-NOISE", "Parking", 1))
    dev = devices("dev-noise")
    wait_ready(dev, tap)

    for seed in range(3):
        dev.scanner.inject(noise.garbage_mix(seed=seed))
    dev.scanner.inject(noise.random_bytes(4096, seed=99) + b"\r\n")
    settle(dev)
    assert dev.alive
    assert dev.events("bad_code"), "the firmware did not notice the noise"

    _, verdict, _ = scan_and_verdict(dev, tap, "E2E-AFTER-NOISE")
    assert verdict["reason"] == "OK"
    assert dev.alive
    # Whatever the firmware made of the noise, it never sent the gateway an invalid scan.
    assert not [r for r in redemptions(gw) if r["reason"] == "MALFORMED"]


def test_turnstile_pulses_the_relay_only_on_ok(
    mosquitto: Mosquitto, gateway_factory: Callable[..., Any], devices: DeviceFactory, tap: Tap
) -> None:
    gw = gateway_factory(mosquitto.url)
    create_orders(gw, ("E2E-GATE-1", "Entry", 1))
    dev = devices("turnstile-1", mode="turnstile")
    wait_ready(dev, tap)

    def pulses(after: int) -> list[dict[str, Any]]:
        return [e for e in dev.events()[after:] if e.get("ev") == "relay" and "ms" in e]

    mark = dev.mark()
    _, verdict, _ = scan_and_verdict(dev, tap, "E2E-GATE-1")
    assert verdict["reason"] == "OK"
    wait_for(lambda: pulses(mark), TIMEOUT, "a relay pulse")
    # The board's relay pin went high and back low (the pulse itself, not just the intent).
    wait_for(
        lambda: [e.get("on") for e in dev.events()[mark:] if e.get("ev") == "relay_pin"] == [1, 0],
        TIMEOUT,
        "relay pin high then low",
    )

    mark = dev.mark()
    _, verdict, _ = scan_and_verdict(dev, tap, "E2E-GATE-1")
    assert verdict["reason"] == "ALREADY_USED"
    wait_for(lambda: "deny" in sounds_after(dev, mark), TIMEOUT, "deny sound")
    assert not pulses(mark)


def test_command_trigger_scanner_reads_only_when_triggered(
    mosquitto: Mosquitto, gateway_factory: Callable[..., Any], devices: DeviceFactory, tap: Tap
) -> None:
    gw = gateway_factory(mosquitto.url)
    create_orders(gw, ("E2E-TRIGGER-1", "Boat Tour", 2))
    dev = devices("dev-trigger", config={"scanner_mode": "command"})
    wait_ready(dev, tap)
    dev.wait_event(lambda e: e.get("ev") == "scanner" and e.get("probe") == "gm", what="scanner configured")
    assert dev.scanner.module.mode is Mode.COMMAND  # the firmware switched the module over the wire

    # The module holds the code until the firmware's next trigger; the firmware then reads it normally.
    assert dev.scan("E2E-TRIGGER-1") == b""
    _, verdict, _ = wait_verdict_for(dev, tap, "E2E-TRIGGER-1")
    assert verdict["reason"] == "OK" and verdict["left"] == 1
    assert not dev.events("bad_code"), "a trigger acknowledgement was taken for a code"


def test_scanner_reply_at_real_line_speed_is_understood(
    mosquitto: Mosquitto, gateway_factory: Callable[..., Any], devices: DeviceFactory, tap: Tap
) -> None:
    gw = gateway_factory(mosquitto.url)
    create_orders(gw, ("E2E-9600-1", "Day Pass", 1))
    # Bytes reach the firmware at 9600 baud (about 1 ms each), as from a real module.
    dev = devices("dev-9600", scanner=PtyScanner(pace_baud=9600))
    wait_ready(dev, tap)
    probe = dev.wait_event(lambda e: e.get("ev") == "scanner", what="scanner probe")
    settle(dev)
    assert probe.get("probe") == "gm", probe  # the module answered and was configured
    assert dev.scanner.module.mode is Mode.CONTINUOUS
    assert not dev.events("bad_code"), dev.events("bad_code")  # no late reply taken for a code
    _, verdict, _ = scan_and_verdict(dev, tap, "E2E-9600-1")
    assert verdict["reason"] == "OK"
