"""Scripted scenario against a real gateway + broker that captures the firmware's OLED screens as PNGs.

``python -m tools.sim screenshots`` writes docs/img/oled-*.png: the frames are the exact PBMs the
firmware drew (the numbered frame named by its ``screen`` event), only scaled up for the docs.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tools.sim.oled import read_pbm
from tools.sim.paths import FIRMWARE_MAIN
from tools.sim.png import render_png
from tools.sim.runner import DEFAULT_HEAP_K, DeviceConfig, Event, FirmwareProcess
from tools.sim.stack import LocalStack

TIMEOUT = 30.0

ORDERS: list[dict[str, Any]] = [
    {"code": "HX-VIP-0001", "title": "VIP Day Pass", "quantity": 5},
    {"code": "HX-TICKET-0002", "title": "Concert", "quantity": 1},
]


def _screen_is(state: str, l1: str | None = None) -> Callable[[Event], bool]:
    def pred(e: Event) -> bool:
        return e.get("ev") == "screen" and e.get("state") == state and (l1 is None or e.get("l1") == l1)

    return pred


def _screen_l1(l1: str) -> Callable[[Event], bool]:
    def pred(e: Event) -> bool:
        return e.get("ev") == "screen" and e.get("l1") == l1

    return pred


class Scenario:
    def __init__(
        self,
        dest: Path,
        work: Path,
        palette: str,
        log: Callable[[str], None],
        heap_k: int = DEFAULT_HEAP_K,
        firmware: Path | None = None,
    ) -> None:
        self.heap_k = heap_k
        self.main = (firmware / "main.py") if firmware else FIRMWARE_MAIN
        self.dest = dest
        self.work = work
        self.palette = palette
        self.log = log
        self.written: list[Path] = []

    def capture(
        self, dev: FirmwareProcess, name: str, predicate: Callable[[Event], bool], after: int
    ) -> Event:
        ev = dev.wait_event(predicate, after=after, timeout=TIMEOUT, what=f"screen for {name}")
        frame = read_pbm(dev.out / f"oled-{int(ev['frame']):04d}.pbm")
        path = render_png(frame, self.dest / f"oled-{name}.png", palette=self.palette)
        self.log(f"{name}: {' | '.join(frame.text_lines())}")
        self.written.append(path)
        return ev

    def rules(self, stack: LocalStack, dev: FirmwareProcess) -> None:
        """The screens the redemption rules produce (docs/rules.md), from real verdicts of the gateway."""
        stack.ensure_site("elsewhere", "Another shop")
        orders = [{"code": f"HX-RULE-{i:02d}", **o} for i, (_, o, _, _) in enumerate(RULE_SCREENS)]
        stack.create_orders(orders)
        for (name, _, before, l1), order in zip(RULE_SCREENS, orders, strict=True):
            for _ in range(before):
                mark = dev.mark()
                dev.scan(order["code"])
                dev.wait_event(_screen_is("OK"), after=mark, timeout=TIMEOUT, what=f"first scan for {name}")
            mark = dev.mark()
            dev.scan(order["code"])
            self.capture(dev, f"rule-{name}", _screen_l1(l1), mark)

    def run(self) -> list[Path]:
        shutil.rmtree(self.work, ignore_errors=True)
        stack = LocalStack(self.work / "stack").start()
        dev: FirmwareProcess | None = None
        try:
            stack.ensure_site()
            stack.create_orders(ORDERS)
            cfg = DeviceConfig(device="dev-1", gate="Gate 1", mqtt=stack.mqtt, heartbeat_s=5)
            dev = FirmwareProcess(self.work / "dev-1", cfg, heap_k=self.heap_k, main=self.main.resolve())
            dev.start()
            self.capture(dev, "ready", _screen_is("READY"), 0)

            mark = dev.mark()
            dev.scan("HX-VIP-0001")
            self.capture(dev, "ok", _screen_is("OK"), mark)

            mark = dev.mark()
            dev.scan("HX-TICKET-0002")
            dev.wait_event(_screen_is("OK"), after=mark, timeout=TIMEOUT, what="first ticket scan")
            mark = dev.mark()
            dev.scan("HX-TICKET-0002")
            self.capture(dev, "already-used", _screen_is("DENIED"), mark)

            mark = dev.mark()
            dev.scan("HX-NO-SUCH-ORDER")
            self.capture(dev, "unknown-code", _screen_is("DENIED"), mark)

            self.rules(stack, dev)

            mark = dev.mark()
            stack.broker.stop()
            self.capture(dev, "offline", _screen_is("OFFLINE"), mark)
            mark = dev.mark()
            dev.scan("HX-VIP-0001")
            self.capture(dev, "offline-queued", _screen_is("OFFLINE", "OFFLINE"), mark)
            # The queued scan is uploaded and answered once the broker is back.
            mark = dev.mark()
            stack.broker.start()
            dev.wait_event(
                lambda e: e.get("ev") == "verdict", after=mark, timeout=TIMEOUT, what="drained scan"
            )

            peak = heap_peak(dev.events("heap"))
            if peak is not None:
                where = "build (.mpy)" if (self.main.parent / "hx" / "app.mpy").exists() else "source (.py)"
                self.log(f"peak live heap: {peak} bytes, firmware from {where}, -X heapsize={self.heap_k}K")
        finally:
            if dev is not None:
                dev.close()
            stack.stop()
        return self.written


RULE_SCREENS: list[tuple[str, dict[str, Any], int, str]] = [
    # name, order (code filled in), scans before the one captured, expected first line
    (
        "too-soon",
        {"title": "Car Wash x5", "kind": "pack", "quantity": 5, "rules": {"min_interval_s": 3600}},
        1,
        "TOO SOON",
    ),
    (
        "daily-limit",
        {"title": "Gym x20", "kind": "pack", "quantity": 20, "rules": {"per_day": 1}},
        1,
        "DAILY LIMIT",
    ),
    ("passback", {"title": "Day Ticket", "quantity": 3, "rules": {"passback": True}}, 1, "ALREADY INSIDE"),
    ("amount-needed", {"title": "Cash 100", "kind": "value", "quantity": 10000}, 0, "ENTER AMOUNT"),
    (
        "expired",
        {
            "title": "Summer Pass",
            "quantity": 1,
            "valid_from": "2025-06-01T00:00:00+08:00",
            "valid_until": "2025-09-01T00:00:00+08:00",
        },
        0,
        "EXPIRED",
    ),
    (
        "not-yet-valid",
        {"title": "New Year Gala", "quantity": 1, "valid_from": "2099-12-31T20:00:00+08:00"},
        0,
        "NOT YET VALID",
    ),
    ("wrong-site", {"title": "Other Shop", "quantity": 1, "site": "elsewhere"}, 0, "WRONG SITE"),
    (
        "outside-hours",
        {"title": "Never Open", "quantity": 1, "rules": {"days": "0000000"}},
        0,
        "OUTSIDE HOURS",
    ),
]


def heap_peak(events: list[Event]) -> int | None:
    """The firmware's own heap high-water mark from its ``heap`` events (None if it reported none)."""
    peaks = [int(e[k]) for e in events for k in ("live_peak", "peak") if isinstance(e.get(k), int)]
    return max(peaks) if peaks else None


def run_scenario(
    dest: Path,
    work: Path,
    *,
    palette: str = "white",
    log: Callable[[str], None] = print,
    heap_k: int = DEFAULT_HEAP_K,
    firmware: Path | None = None,
) -> list[Path]:
    return Scenario(dest, work, palette, log, heap_k, firmware).run()
