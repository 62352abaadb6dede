# Hypothesis-made garbage on the scanner UART of the real firmware on the VM: the firmware rejects every
# line, publishes no scan, does not crash, the gateway's tables do not change, and a real code still works.
from __future__ import annotations

import os
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.adapters.brokers.mosquitto import Mosquitto
from tests.conftest import GatewayProc
from tests.e2e.conftest import DeviceFactory, Tap
from tests.e2e.helpers import create_orders, scan_and_verdict, settle, wait_ready
from tests.faults.harness import record
from tests.fuzz.state import digest

FULL = os.environ.get("HX_CHAOS", "") == "full"
EXAMPLES = 2000 if FULL else 200
_EOL = b"\r\n"


def _no_eol(b: bytes) -> bytes:
    return b.replace(b"\r", b"").replace(b"\n", b"")


# Each line is not a code by construction (firmware/hx/codes.py's rules), so it must change nothing:
_control = st.builds(
    lambda body, at, ctrl: _no_eol(body)[:at] + bytes([ctrl]) + _no_eol(body)[at:],
    st.binary(max_size=200),
    st.integers(0, 200),
    st.sampled_from([b for b in range(32) if b not in (10, 13)] + [127]),
)
_not_utf8 = st.builds(
    lambda head, tail: head.encode() + b"\xff" + tail.encode(),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
)
_c1 = st.builds(
    lambda a, c: (a + c).encode(),
    st.text(alphabet="ABC-123", max_size=10),
    st.characters(min_codepoint=0x80, max_codepoint=0x9F),
)
_too_long = st.integers(129, 700).map(lambda n: b"Z" * n)
garbage_line = st.one_of(_control, _not_utf8, _c1, _too_long)


def test_garbage_on_the_scanner_uart_changes_nothing(
    mosquitto: Mosquitto, gateway_factory: Callable[..., GatewayProc], devices: DeviceFactory, tap: Tap
) -> None:
    gw = gateway_factory(mosquitto.url)
    create_orders(gw, ("FZ-UART-OK", "After the noise", 1))
    dev = devices("fz-uart")
    wait_ready(dev, tap)
    # The devices table is left out: the device's own status (heartbeats, registration) legitimately
    # writes it; a garbage line reaching the gateway would show up as a scan and a ledger row.
    tables = ("orders", "redemptions")
    before = digest(gw.db_path, tables)
    lines = [0]

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(line=garbage_line, eol=st.sampled_from([b"\r", b"\n", b"\r\n"]))
    def one(line: bytes, eol: bytes) -> None:
        dev.scanner.inject(line + eol)
        lines[0] += 1

    one()
    dev.scanner.inject(_EOL)
    settle(dev, quiet=2.0)
    after = digest(gw.db_path, tables)
    scans = tap.of("scan", "fz-uart")
    crashes = [e for e in dev.events() if e.get("ev") in ("crash", "crash_reset", "boot_fault")]
    rejected = len(dev.events("bad_code"))
    _, verdict, _ = scan_and_verdict(dev, tap, "FZ-UART-OK")
    record("fuzz_uart", lines=lines[0], rejected=rejected, scans_published=len(scans), crashes=len(crashes))
    assert dev.alive and not crashes, crashes
    assert "Traceback" not in dev.console(), dev.console()[-2000:]
    assert not scans, f"garbage reached the gateway as scans: {scans[:5]}"
    assert rejected > 0, "the firmware logged no rejected line: the garbage never arrived"
    assert after == before, f"garbage on the UART changed the database: {before} -> {after}"
    assert verdict["reason"] == "OK"
