# Review: firmware attack probes on the real MicroPython VM; each was a break found in review, now fixed.
from __future__ import annotations

from pathlib import Path

from tests.firmware.mpvm import counts, run_mp

SCRIPT = Path(__file__).resolve().parent / "mp" / "review_fw.py"


def _run(name: str) -> None:
    out = run_mp(SCRIPT, name)
    passed, failed = counts(out.stdout)
    assert (passed, failed) == (1, 0), out.stdout[-3000:] + out.stderr[-2000:]


def test_late_verdict_before_tick_pulses_relay() -> None:
    """Hole 19: a verdict after the timeout, before tick() ran, must not pulse (awaits checks the clock)."""
    _run("test_ui_verdict_after_timeout_without_tick_pulses")


def test_offline_queued_scan_rejoined_by_rescan_pulses_relay() -> None:
    """Hole 19: a rescan never rejoins a scan queued offline; that scan's OK never opens the gate."""
    _run("test_offline_queued_scan_rejoined_by_rescan_pulses")


def test_hand_cancelled_checking_then_rescan_redeems_twice() -> None:
    """Hole 13: OK pressed on CHECKING, late OK, rescan -> the same sid, never a second redemption."""
    _run("test_ok_button_cancel_then_rescan_is_second_redemption")
