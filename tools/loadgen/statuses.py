# CPU of device statuses in the redemption service alone: `python -m tools.loadgen.statuses` (SQLite, no broker).
from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import insert

from gateway.adapters.db.engine import make_engine, migrate
from gateway.adapters.db.models import Device, Site
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.adapters.db.repositories.writer import SqlWriter
from gateway.adapters.mqtt.transport import mqtt_transport
from gateway.services.redeem import RedemptionService

DOC = json.dumps({"v": 1, "state": "online", "fw": "1.2.3", "rssi": -60, "heap": 12345, "up": 1000}).encode()


def run(statuses: int, devices: int, registered: bool, workdir: Path) -> tuple[float, float]:
    """Feed `statuses` heartbeats of `devices` devices (20 at a time, as a trickle) to a running
    service; (process CPU seconds per status, wall seconds) until the last one is acknowledged.

    Process CPU includes this feeding loop; it is the same for every version of the service."""
    e = make_engine(f"sqlite:///{workdir / 'statuses.db'}")
    migrate(e)
    ids = [f"d{i:05d}" for i in range(devices)]
    with e.begin() as c:
        c.execute(insert(Site).values(slug="zoo", name="zoo", timezone="Asia/Shanghai", created_at=0.0))
        if registered:
            rows = [dict(device_id=d, gate=d, mode="handheld", online=False, created_at=0.0) for d in ids]
            c.execute(insert(Device), rows)
    svc = RedemptionService(
        SqlDatabase(e), SqlWriter(e), mqtt_transport(lambda _t, _p: None), auto_register_site="zoo"
    )
    done = threading.Semaphore(0)
    svc.start()
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(statuses):
        svc.submit_mqtt(f"hx/v1/dev/{ids[i % devices]}/status", DOC, done.release)
        if i % 20 == 19:
            time.sleep(0.002)
    for _ in range(statuses):
        done.acquire()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    svc.stop()
    e.dispose()
    return cpu / statuses, wall


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.loadgen.statuses", description=__doc__)
    p.add_argument("--statuses", type=int, default=5000)
    p.add_argument("--devices", type=int, default=5000)
    p.add_argument("--new", action="store_true", help="devices not registered beforehand (first seen)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        per, wall = run(args.statuses, args.devices, not args.new, Path(tmp))
    seen = "first seen" if args.new else "registered"
    print(
        f"{args.statuses:,} statuses of {args.devices:,} {seen} devices: {per * 1e6:.0f} µs CPU per status, {wall:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
