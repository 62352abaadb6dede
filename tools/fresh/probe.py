# Inside the fresh root, with the venv `make run` made: redeem one demo code over REST, one over MQTT.
# Prints one JSON line {"rest_s", "mqtt_s", "python", "machine"}; exits 1 with the reason otherwise.
from __future__ import annotations

import argparse
import json
import platform
import queue
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

TIMEOUT = 120.0  # an upper bound for a slow emulated CPU, never a speed check


def redeem_rest(http: str, token: str, code: str) -> dict[str, Any]:
    body = {"code": code, "site": "demo", "request_id": "fresh-rest-1"}
    r = httpx.post(
        f"{http}/api/redeem", json=body, headers={"authorization": f"Bearer {token}"}, timeout=TIMEOUT
    )
    if r.status_code != 200:
        raise SystemExit(f"REST redeem answered {r.status_code}: {r.text[:300]}")
    out: dict[str, Any] = r.json()
    return out


def redeem_mqtt(host: str, port: int, code: str) -> dict[str, Any]:
    """A scan as a board publishes it (QoS 1, anonymous on the loopback demo broker), then its verdict."""
    dev = "fresh-check"
    verdicts: queue.Queue[dict[str, Any]] = queue.Queue()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=dev)
    c.on_message = lambda _c, _u, m: verdicts.put(json.loads(m.payload))
    subscribed: queue.Queue[bool] = queue.Queue()
    c.on_subscribe = lambda *_a: subscribed.put(True)
    c.connect(host, port)
    c.loop_start()
    try:
        c.subscribe(f"hx/v1/dev/{dev}/verdict", qos=1)
        subscribed.get(timeout=TIMEOUT)
        scan = {"v": 1, "sid": "fresh-1", "code": code, "qty": 1, "dir": "in", "at": 0}
        c.publish(f"hx/v1/dev/{dev}/scan", json.dumps(scan), qos=1).wait_for_publish(TIMEOUT)
        while True:
            v = verdicts.get(timeout=TIMEOUT)
            if v.get("sid") == "fresh-1":
                return v
    finally:
        c.loop_stop()
        c.disconnect()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m tools.fresh.probe")
    p.add_argument("--http", required=True)
    p.add_argument("--mqtt-port", type=int, required=True)
    p.add_argument("--var", type=Path, default=Path("var"))
    a = p.parse_args(argv)
    token = (a.var / "local-token").read_text().strip()
    t0 = time.monotonic()
    rest = redeem_rest(a.http, token, "HXDEMO-VIP-0001")
    t1 = time.monotonic()
    if not rest.get("ok"):
        raise SystemExit(f"REST redeem of HXDEMO-VIP-0001 was refused: {rest}")
    mq = redeem_mqtt("127.0.0.1", a.mqtt_port, "HXDEMO-TOUR-0002")
    t2 = time.monotonic()
    if not mq.get("ok"):
        raise SystemExit(f"MQTT redeem of HXDEMO-TOUR-0002 was refused: {mq}")
    out = {
        "rest_s": round(t1 - t0, 3),
        "mqtt_s": round(t2 - t1, 3),
        "rest": rest.get("detail"),
        "mqtt": mq.get("detail"),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
