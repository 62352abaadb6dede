# End to end over the real broker and gateway: a re-flashed board never gets an old verdict, and a late
# OK never opens the turnstile (the rescan of the same code collects it instead).
from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Callable
from typing import Any

from gateway.adapters.brokers.mosquitto import Mosquitto
from tests.e2e.conftest import DeviceFactory, Tap
from tests.e2e.helpers import TIMEOUT, create_orders, redemptions, scan_and_verdict, settle, wait_ready
from tests.helpers import wait_for
from tools.sim.runner import FirmwareProcess


def pulses(dev: FirmwareProcess, after: int = 0) -> list[dict[str, Any]]:
    """Relay pulses the board actually drove since ``after``."""
    return [e for e in dev.events()[after:] if e.get("ev") == "relay" and "ms" in e]


def redeem_once(dev: FirmwareProcess, tap: Tap, code: str) -> str:
    """Scan ``code`` on a turnstile: OK, and the relay pulses once. Returns the scan id."""
    mark = dev.mark()
    sid, verdict, _ = scan_and_verdict(dev, tap, code)
    assert verdict["ok"] is True and verdict["reason"] == "OK", verdict
    wait_for(lambda: pulses(dev, mark), TIMEOUT, "the relay pulse for the OK")
    return sid


def erase_flash(dev: FirmwareProcess) -> None:
    """`provision flash`: everything on the board's flash is gone, then its config is written again."""
    config = (dev.flash / "config.json").read_bytes()
    for p in dev.flash.iterdir():
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    (dev.flash / "config.json").write_bytes(config)


def test_reflashed_board_never_gets_the_old_ok(
    mosquitto: Mosquitto, gateway_factory: Callable[..., Any], devices: DeviceFactory, tap: Tap
) -> None:
    """Hole 1: a turnstile redeems A, is erased and re-provisioned (boot counter from 1 again) and
    scans an unknown code B: B is decided on its own (UNKNOWN_CODE), never answered with A's stored
    OK, and the relay never pulses again."""
    gw = gateway_factory(mosquitto.url)
    create_orders(gw, ("E2E-REFLASH-A", "Day Pass", 1))
    dev = devices("gate-reflash", mode="turnstile")
    wait_ready(dev, tap)
    sid_a = redeem_once(dev, tap, "E2E-REFLASH-A")

    dev.kill()
    erase_flash(dev)
    mark = dev.mark()
    dev.start()
    start = dev.wait_event(lambda e: e.get("ev") == "start", after=mark, timeout=TIMEOUT, what="boot")
    assert start["boot"] == 1 and start["outbox"] == 0
    dev.wait_event(
        lambda e: e.get("ev") == "screen" and e.get("state") == "READY",
        after=mark,
        timeout=TIMEOUT,
        what="READY",
    )

    mark = dev.mark()
    sid_b, verdict, _ = scan_and_verdict(dev, tap, "E2E-REFLASH-B-UNKNOWN")
    # Same boot number and sequence as A's scan: only the new install id tells them apart.
    assert sid_b.split("-", 1)[1] == sid_a.split("-", 1)[1] and sid_b != sid_a
    assert verdict["ok"] is False and verdict["reason"] == "UNKNOWN_CODE", verdict
    settle(dev)
    assert not pulses(dev, mark)
    assert len(pulses(dev)) == 1, "one pulse in the board's whole life: A's"
    rows = redemptions(gw, device="gate-reflash")
    assert sorted((r["scan_id"], r["code"], r["reason"]) for r in rows) == sorted(
        [(sid_a, "E2E-REFLASH-A", "OK"), (sid_b, "E2E-REFLASH-B-UNKNOWN", "UNKNOWN_CODE")]
    )


def test_gateway_refuses_reused_sid(
    mosquitto: Mosquitto, gateway_factory: Callable[..., Any], devices: DeviceFactory, tap: Tap
) -> None:
    """Hole 1 (gateway side): a scan that reuses a decided scan id with another code (a board from
    before install ids, re-flashed) gets SID_REUSED, not the stored OK; the turnstile stays shut."""
    gw = gateway_factory(mosquitto.url)
    create_orders(gw, ("E2E-REUSE-A", "Day Pass", 1))
    dev = devices("gate-reuse", mode="turnstile")
    wait_ready(dev, tap)
    sid_a = redeem_once(dev, tap, "E2E-REUSE-A")

    mark = dev.mark()
    seen = len(tap.of("verdict", dev.device))
    raw = {"v": 1, "sid": sid_a, "code": "E2E-REUSE-B-UNKNOWN", "qty": 1, "dir": "in", "at": 0}
    tap.c.publish(f"hx/v1/dev/{dev.device}/scan", json.dumps(raw), qos=1).wait_for_publish(10)
    verdict = wait_for(
        lambda: [v for v in tap.of("verdict", dev.device)[seen:] if v.get("sid") == sid_a],
        TIMEOUT,
        "the answer to the reused scan id",
    )[0]
    assert verdict["ok"] is False and verdict["reason"] == "SID_REUSED", verdict
    settle(dev)
    assert not pulses(dev, mark), "the stored OK never reaches the relay"
    ok_rows = [r for r in redemptions(gw, device="gate-reuse") if r["ok"]]
    assert [(r["scan_id"], r["code"]) for r in ok_rows] == [(sid_a, "E2E-REUSE-A")]


def test_late_ok_never_opens_and_the_rescan_collects_it(
    mosquitto: Mosquitto, gateway_factory: Callable[..., Any], devices: DeviceFactory, tap: Tap
) -> None:
    """Holes 19 and 13: the gateway stalls, the turnstile shows NO ANSWER; the OK that comes later is
    logged as late and the relay does not pulse. The holder rescans: the device resends that same
    scan id and the gateway's original OK opens the gate, once; one unit is used, under one scan id."""
    gw = gateway_factory(mosquitto.url)
    create_orders(gw, ("E2E-LATE-1", "Day Pass", 1))
    dev = devices("gate-late", mode="turnstile", config={"verdict_timeout_ms": 1500, "dedupe_ms": 1000})
    wait_ready(dev, tap)

    assert gw.proc is not None
    mark = dev.mark()
    os.kill(gw.proc.pid, signal.SIGSTOP)  # the gateway stalls (a deep queue, a slow disk)
    try:
        assert dev.scan("E2E-LATE-1")
        scan = dev.wait_event(
            lambda e: e.get("ev") == "scan" and e.get("code") == "E2E-LATE-1", after=mark, timeout=TIMEOUT
        )
        sid = str(scan["sid"])
        dev.wait_event(
            lambda e: e.get("ev") == "screen" and e.get("l1") == "NO ANSWER",
            after=mark,
            timeout=TIMEOUT,
            what="NO ANSWER",
        )
    finally:
        os.kill(gw.proc.pid, signal.SIGCONT)
    late = dev.wait_event(
        lambda e: e.get("ev") == "late_verdict" and e.get("sid") == sid,
        after=mark,
        timeout=TIMEOUT,
        what="late OK",
    )
    assert late["ok"] is True and late["reason"] == "OK"
    settle(dev)
    assert not pulses(dev, mark), "a late OK opened the turnstile"
    assert not [e for e in dev.events()[mark:] if e.get("ev") == "buzzer" and e.get("sound") == "ok"]

    mark = dev.mark()
    assert dev.scan("E2E-LATE-1")
    rescan = dev.wait_event(lambda e: e.get("ev") == "rescan", after=mark, timeout=TIMEOUT, what="rescan")
    assert rescan["sid"] == sid, "the rescan reuses the scan id"
    shown = dev.wait_event(
        lambda e: e.get("ev") == "verdict" and e.get("sid") == sid and e.get("shown") is True,
        after=mark,
        timeout=TIMEOUT,
        what="the original verdict on screen",
    )
    assert shown["ok"] is True and shown["reason"] == "OK"
    wait_for(lambda: pulses(dev, mark), TIMEOUT, "the pulse for the holder on screen")
    settle(dev)
    assert len(pulses(dev, mark)) == 1
    assert not [e for e in dev.events() if e.get("ev") == "scan" and e.get("code") == "E2E-LATE-1"][1:], (
        "no second scan was queued"
    )
    rows = redemptions(gw, code="E2E-LATE-1")
    assert [(r["scan_id"], r["reason"]) for r in rows] == [(sid, "OK")], rows
