# RAM: the compiled firmware (.mpy, as shipped) must do its job inside a fixed heap on the 64-bit VM.
# The measured figures (live-heap high-water from the `heap` events, smallest heap that works) are
# recorded in docs/firmware.md; this test keeps the budget from silently growing past HEAP_K.
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.adapters.brokers import pki
from gateway.adapters.brokers.mosquitto import Mosquitto, free_port
from gateway.adapters.brokers.mosquitto_conf import TlsListener
from gateway.adapters.brokers.tls_files import ensure_broker_tls
from gateway.adapters.mqtt.acl import render_acl, render_passwords, write_private
from gateway.domain.device_secrets import hash_secret, new_secret
from tests.firmware.test_app_host import DEV, Device, FakeGateway
from tools.build_firmware import build

# Heap given to the VM: measured need + headroom for fragmentation (docs/firmware.md "Memory").
HEAP_K = int(os.environ.get("HX_TEST_HEAP_K", "152"))
# Live-heap bounds that catch a regression (a memory figure is deterministic up to a few KB of timing:
# what is in flight when the health task samples). Measured on this 64-bit VM with the .mpy build:
# ~110 KB (13 scans), ~115 KB (TLS), ~120 KB (1000 queued; 127 KB before the 9-byte outbox index).
LIVE_MAX = 124 * 1024
# HX_TEST_FROZEN=1 with HX_MICROPYTHON = a VM built with `hx` frozen in (docs/firmware.md "Memory"): the
# build keeps only main.py, boot.py, slots.py and board.json, so the frozen package is what runs.
FROZEN = os.environ.get("HX_TEST_FROZEN") == "1"


@pytest.fixture(scope="module")
def fw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The .mpy build, made once for this module's runs (they only read it)."""
    out = tmp_path_factory.mktemp("fw") / "fw"
    build(out)
    if FROZEN:
        shutil.rmtree(out / "hx")
    return out


class Link:
    """The broker side of one run: plaintext (the `mosquitto` fixture) or, as on a shop LAN, a TLS
    listener with a certificate from the gateway's CA and per-device logins."""

    def __init__(self, tmp: Path, broker: Mosquitto, tls: bool) -> None:
        self.broker = broker
        self.login: tuple[str, str] | None = None
        self.mqtt: dict[str, Any] = {}
        self.ca: bytes | None = None
        if not tls:
            return
        workdir = tmp / "tls-broker"
        files = ensure_broker_tls(
            tmp / "var", workdir, pki.broker_names("localhost", [], []), datetime.now(UTC)
        )
        secret, gw_secret = new_secret(), new_secret()
        write_private(
            workdir / "passwd",
            render_passwords([(DEV, hash_secret(secret)), ("fake-gw", hash_secret(gw_secret))]),
        )
        write_private(workdir / "acl", render_acl("fake-gw"))
        port = free_port()
        self.broker = Mosquitto(
            workdir, password_file=workdir / "passwd", acl_file=workdir / "acl",
            tls=TlsListener(port, "127.0.0.1", files.cafile, files.certfile, files.keyfile),
        )  # fmt: skip
        self.broker.start()
        self.login = ("fake-gw", gw_secret)
        self.mqtt = {
            "mqtt": {"host": "127.0.0.1", "port": port, "user": DEV, "password": secret, "ca": "ca.der"}
        }
        self.ca = files.ca_der


@pytest.fixture(params=["plaintext", "tls"])
def link(request: pytest.FixtureRequest, tmp_path: Path, mosquitto: Mosquitto) -> Iterator[Link]:
    lk = Link(tmp_path, mosquitto, request.param == "tls")
    yield lk
    if lk.broker is not mosquitto:
        lk.broker.stop()


def test_mpy_build_runs_in_budget(tmp_path: Path, link: Link, fw: Path) -> None:
    out = fw
    if FROZEN and link.ca is not None:
        pytest.skip("the frozen measurement VM is built without TLS")
    assert FROZEN or ((out / "hx" / "app.mpy").exists() and not (out / "hx" / "app.py").exists())
    assert json.loads((out / "board.json").read_text())["board"] == "esp32-devkitc"
    gw = FakeGateway(link.broker, link.login)
    dev = Device(tmp_path / "dev", link.broker, main=out / "main.py", heap_k=HEAP_K, **link.mqtt)
    if link.ca is not None:
        (dev.flash / "ca.der").write_bytes(link.ca)
    dev.start()
    try:
        dev.wait(lambda e: e["ev"] == "screen" and e["state"] == "READY", what="READY")
        for i in range(12):
            m = dev.mark()
            dev.type(f"GOOD-M{i}\r\n".encode())
            dev.wait(lambda e: e["ev"] == "verdict", m, f"verdict {i}")
        m = dev.mark()
        dev.type(b"GOOD-LAST\r\n")
        dev.wait(lambda e: e["ev"] == "heap" and e["live_peak"] > 0, m, "heap report", timeout=30)
        assert not dev.events("crash"), [e.get("error") for e in dev.events("crash")]
        ups = [e for e in dev.events("mqtt") if e.get("state") == "up"]
        assert ups and all(e["tls"] is (link.ca is not None) for e in ups)
        peak = max(e["live_peak"] for e in dev.events("heap"))
        print(f"live heap high-water ({'TLS' if link.ca else 'plaintext'}): {peak} bytes (heap {HEAP_K} KiB)")
        assert peak < (HEAP_K * 1024 if FROZEN else LIVE_MAX)
    finally:
        dev.kill()
        gw.close()


def test_boot_with_a_full_outbox_runs_in_budget(tmp_path: Path, mosquitto: Mosquitto, fw: Path) -> None:
    """A device that queued 1000 scans offline boots inside the same heap and starts uploading."""
    out = fw
    gw = FakeGateway(mosquitto)
    dev = Device(tmp_path / "dev", mosquitto, main=out / "main.py", heap_k=HEAP_K, outbox_max=1000)
    iid = "Ab3xYz"
    (dev.flash / "install").write_text(iid)
    (dev.flash / "boot").write_text("1")
    box = dev.flash / "outbox"
    box.mkdir()
    for seq in range(1, 1001):
        sid = f"{iid}-1-{seq:x}"
        scan = {"v": 1, "sid": sid, "code": f"GOOD-F{seq}", "qty": 1, "dir": "in", "at": 1795392000}
        (box / f"{1:08x}{seq:08x}{iid}").write_text(json.dumps(scan))
    dev.start()
    try:
        start = dev.wait(lambda e: e["ev"] == "start", what="start")
        assert start["outbox"] == 1000 and start["boot"] == 2
        dev.wait(lambda e: e["ev"] == "heap" and e["outbox"] < 1000, what="uploading", timeout=60)
        assert not dev.events("crash"), [e.get("error") for e in dev.events("crash")]
        peak = max(e["live_peak"] for e in dev.events("heap"))
        print(f"full outbox: live heap high-water {peak} bytes (heap {HEAP_K} KiB)")
        assert peak < (HEAP_K * 1024 if FROZEN else LIVE_MAX)
    finally:
        dev.kill()
        gw.close()


def test_heap_probe_bounds_a_burst_into_a_full_outbox(tmp_path: Path, fw: Path) -> None:
    """tools/heap32/burst.py (the probe of `make heap32`) on the .mpy build: the App boots on an outbox of
    480 scans (the ESP32's cap is 500), a burst fills it, the extra scans are refused, the verdicts drain
    it again. Bounds from the figures in docs/firmware.md, 64-bit VM: modules ~63 KB, the App with its
    480 queued scans +14 KB, the burst +1 KB more (+8.3 KB when verdict lines still interned their
    characters). The first two leave room for a qstr pool doubling (~7 KB at once on this VM: loading a
    module's .mpy interns its names for good), so that new code alone does not trip them; the outbox
    index's own bound is per entry (mp/test_outbox.py)."""
    import subprocess

    from tests.firmware.mpvm import MICROPYTHON, ROOT

    if FROZEN:
        pytest.skip("make heap-frozen runs the probe on the frozen VMs itself")
    res = subprocess.run(
        [str(MICROPYTHON), "tools/heap32/burst.py", str(fw), str(tmp_path / "flash"), "500"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    fig = json.loads(res.stdout.strip().splitlines()[-1])
    print("heap probe:", fig)
    assert (fig["outbox_full"], fig["refused"], fig["left"]) == (500, 5, 460)
    assert fig["modules"] < 72 * 1024, "resident code grew (something imported eagerly?)"
    assert fig["app_with_outbox"] - fig["modules"] < 22 * 1024, "the App or the outbox index grew"
    assert fig["peak"] - fig["app_with_outbox"] < 4 * 1024, "a scan burst leaves more behind"
