# A device cut off from the network (the real firmware on the VM in its own network namespace, its link
# dropped) with scans queued and a reboot in between: every scan uploaded and decided once, in order.
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.adapters.brokers.mosquitto import Mosquitto
from tests.conftest import GatewayProc
from tests.e2e.conftest import Tap
from tests.faults.conftest import Scale
from tests.faults.harness import record
from tests.faults.netns import Netns, NetnsFirmware, netns
from tests.faults.steps import make_orders
from tests.helpers import free_port, wait_for
from tools.sim.runner import DeviceConfig, MqttTarget


@pytest.fixture
def ns() -> Iterator[Netns]:
    with netns() as n:
        yield n


class LinkBroker(Mosquitto):
    """Our loopback Mosquitto (the gateway's side) plus a second listener on the host's end of the device's
    veth link (`link_port`).

    The product refuses an anonymous broker off loopback (a venue LAN needs logins); this address is
    reachable only from the test's own namespace, so the test adds the listener to the loopback config
    rather than bring the login machinery into a test about a cut cable.
    """

    def __init__(self, workdir: Path, ip: str) -> None:
        super().__init__(workdir=workdir)
        self.ip = ip
        self.link_port = free_port()

    def write_config(self) -> None:
        super().write_config()
        with self.conf_path.open("a") as f:
            f.write(f"listener {self.link_port} {self.ip}\n")


@pytest.fixture
def ns_broker(tmp_path: Path, ns: Netns) -> Iterator[LinkBroker]:
    """The broker on the host's end of the device's link (the gateway reaches it there too)."""
    b = LinkBroker(tmp_path / "broker", ns.host_ip)
    b.start()
    try:
        yield b
    finally:
        b.stop()


def _queue(dev: NetnsFirmware, codes: list[str]) -> list[str]:
    """Scan `codes` one after another; the scan ids the firmware gave them, in order."""
    sids = []
    for code in codes:
        mark = dev.mark()
        assert dev.scan(code)
        ev = dev.wait_event(
            lambda e, c=code: e.get("ev") == "scan" and e.get("code") == c,
            after=mark,
            timeout=30,
            what=f"{code} queued on flash",
        )
        sids.append(str(ev["sid"]))
    return sids


def test_device_cut_off_queues_reboots_and_uploads_everything_once_in_order(
    tmp_path: Path,
    ns: Netns,
    ns_broker: LinkBroker,
    gateway_factory: Callable[..., GatewayProc],
    chaos: Scale,
) -> None:
    # The per-device rate limit is on, and low enough that the backlog's upload runs into it: refused
    # scans (RATE_LIMITED) must neither be overtaken by later ones (the limiter holds the device in its
    # order, domain/ratelimit.py InOrderBuckets) nor stall the upload (the firmware's back-off grows
    # once per round). The full run uses the product's default (20/s) on 500 scans.
    limit = os.environ.get("HX_CHAOS_DEVICE_RATE_LIMIT", "20" if chaos.full else "10")
    gw = gateway_factory(ns_broker.url, env={"RATE_LIMIT_PER_S": limit})
    n = chaos.offline_scans
    codes = make_orders(gw, "OFF", n, quantity=1)
    tap = Tap(ns_broker.host, ns_broker.port)
    cfg = DeviceConfig(
        device="ns-dev",
        mqtt=MqttTarget(ns.host_ip, ns_broker.link_port),
        keepalive=5,
        extra={"outbox_max": max(64, n + 10)},
    )
    dev = NetnsFirmware(tmp_path / "dev", cfg, ns)
    t0 = time.monotonic()
    try:
        dev.start()
        wait_for(
            lambda: any(s.get("state") == "online" for s in tap.of("status", "ns-dev")), 30, "device online"
        )
        ns.link(False)  # the cable is pulled: no FIN, no RST
        t_cut = time.monotonic()
        seen_before_cut = len(tap.of("scan", "ns-dev"))
        first = _queue(dev, codes[: n // 2])
        mark = dev.mark()
        dev.kill()  # a power cut with half the scans on flash
        dev.start()
        # Scan only once the firmware has probed and set up its scanner again (the module lost power too).
        dev.wait_event(
            lambda e: e.get("ev") == "scanner", after=mark, timeout=30, what="the scanner set up again"
        )
        sids = first + _queue(dev, codes[n // 2 :])
        queued_s = time.monotonic() - t_cut
        leaked = len(tap.of("scan", "ns-dev")) - seen_before_cut
        ns.link(True)
        t_up = time.monotonic()

        def ledger() -> list[Any] | None:
            engine = sa.create_engine(f"sqlite:///{gw.db_path}")
            try:
                with engine.connect() as c:
                    rows = c.execute(
                        sa.text(
                            "SELECT scan_id, code, ok FROM redemptions WHERE device = 'ns-dev' ORDER BY id"
                        )
                    ).all()
            finally:
                engine.dispose()
            return rows if len(rows) >= n else None

        # The full run's 500 scans drain under the default limit (20/s, burst 40) at the pace the
        # firmware's back-off allows, about 4 scans/s (docs/reliability.md): a bound, not a speed.
        rows = wait_for(ledger, 300 if chaos.full else 60, f"{n} queued scans decided", interval=0.5)
        upload_s = time.monotonic() - t_up
        published = [m.get("sid") for m in tap.of("scan", "ns-dev")]
        limited = sum(1 for v in tap.of("verdict", "ns-dev") if v.get("reason") == "RATE_LIMITED")
    finally:
        dev.close()
        tap.close()
    record(
        "device_offline",
        queued=n,
        decided=len(rows),
        ok=sum(1 for r in rows if r.ok),
        published=len(published),
        resent=len(published) - len(set(published)),
        reboots=1,
        rate_limit=float(limit),
        rate_limited=limited,
        queue_s=round(queued_s, 1),
        upload_s=round(upload_s, 1),
        total_s=round(time.monotonic() - t0, 1),
    )
    assert leaked == 0, f"{leaked} scans reached the broker while the link was down: the cut is not real"
    assert len(set(sids)) == n, "the firmware gave two scans one id"
    assert [r.scan_id for r in rows] == sids, "not decided once each, in the order they were scanned"
    assert [r.code for r in rows] == codes
    assert all(r.ok for r in rows), [r for r in rows if not r.ok][:5]
    if float(limit) > 0:
        assert limited > 0, (
            "the upload never ran into the rate limit: the order under refusals was not tested"
        )
