# Shared steps of the end-to-end tests: orders over REST, scanning and waiting for the verdict screen.
from __future__ import annotations

import collections
import time
from typing import Any

from tests.e2e.conftest import Tap
from tests.helpers import wait_for
from tools.sim.oled import Frame, read_pbm
from tools.sim.runner import FirmwareProcess

TIMEOUT = 30.0  # generous upper bound for waiting, never a speed assertion


def create_orders(gw: Any, *orders: tuple[str, str, int]) -> None:
    """POST /api/orders with (code, title, quantity) valid at every site."""
    body = {
        "orders": [
            {"code": c, "title": t, "quantity": q, "site": None, "valid_from": None, "valid_until": None}
            for c, t, q in orders
        ]
    }
    resp = gw.api("POST", "/api/orders", json=body)
    assert resp.status_code == 201, resp.text


def redemptions(gw: Any, **query: Any) -> list[dict[str, Any]]:
    resp = gw.api("GET", "/api/redemptions", params={"limit": 1000, **query})
    assert resp.status_code == 200, resp.text
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


def wait_ready(dev: FirmwareProcess, tap: Tap) -> None:
    """The device is up and online: its retained status says so on the broker."""
    wait_for(
        lambda: any(s.get("state") == "online" for s in tap.of("status", dev.device)),
        TIMEOUT,
        f"{dev.device} online status",
    )


def scan_sid(dev: FirmwareProcess, tap: Tap, code: str, before: int) -> str:
    """The scan id the device published for ``code`` after ``before`` scans were seen."""
    found = wait_for(
        lambda: [s for s in tap.of("scan", dev.device)[before:] if s.get("code") == code],
        TIMEOUT,
        f"{dev.device} publishing a scan of {code}",
    )
    return str(found[0]["sid"])


def shown_frame(dev: FirmwareProcess, after: int, l1: str, l2: str) -> Frame:
    """The OLED frame the firmware drew for a screen with these lines (checked pixel by pixel).

    The frame is taken from the numbered PBM its ``screen`` event names, so a result screen that is
    replaced quickly (the next scan, a button) is still checked exactly as it was shown.
    """
    ev = dev.wait_event(
        lambda e: e.get("ev") == "screen" and e.get("l1") == l1 and e.get("l2") == l2,
        after=after,
        timeout=TIMEOUT,
        what=f"screen {l1!r} / {l2!r}",
    )
    frame = read_pbm(dev.out / f"oled-{int(ev['frame']):04d}.pbm")
    assert frame.contains_text(l1), f"{l1!r} not drawn in frame {ev['frame']}: {frame.text_lines()}"
    assert frame.contains_text(l2), f"{l2!r} not drawn in frame {ev['frame']}: {frame.text_lines()}"
    return frame


def settle(dev: FirmwareProcess, quiet: float = 1.0) -> None:
    """Wait until the device has logged nothing new for ``quiet`` seconds (e.g. after noise)."""
    last = [dev.mark(), time.monotonic()]

    def calm() -> bool:
        n = dev.mark()
        if n != last[0]:
            last[0], last[1] = n, time.monotonic()
        return time.monotonic() - last[1] >= quiet

    wait_for(calm, TIMEOUT, f"{dev.device} to settle")


def scan_and_verdict(dev: FirmwareProcess, tap: Tap, code: str) -> tuple[str, dict[str, Any], Frame]:
    """Scan ``code``; return its scan id, the gateway's verdict and the OLED frame showing it."""
    before = len(tap.of("scan", dev.device))
    mark = dev.mark()
    assert dev.scan(code), "the virtual scanner did not emit the code"
    return _verdict_after(dev, tap, code, before, mark)


def wait_verdict_for(dev: FirmwareProcess, tap: Tap, code: str) -> tuple[str, dict[str, Any], Frame]:
    """Like ``scan_and_verdict`` for a code already presented (e.g. held until a trigger)."""
    return _verdict_after(dev, tap, code, 0, 0)


def _verdict_after(
    dev: FirmwareProcess, tap: Tap, code: str, before: int, mark: int
) -> tuple[str, dict[str, Any], Frame]:
    sid = scan_sid(dev, tap, code, before)
    verdict = wait_for(lambda: tap.verdict(dev.device, sid), TIMEOUT, f"verdict for {sid}")
    frame = shown_frame(dev, mark, verdict["l1"], verdict["l2"])
    return sid, verdict, frame


def no_duplicates(rows: list[dict[str, Any]]) -> None:
    """Exactly one ledger row per (device, scan id)."""
    counts = collections.Counter((r["device"], r["scan_id"]) for r in rows)
    doubled = {k: n for k, n in counts.items() if n != 1}
    assert not doubled, f"scans decided more than once: {doubled}"
