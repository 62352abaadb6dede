"""Frame → verdict on loopback: our own Mosquitto and `python -m gateway run`, a camera board played by paho.

Two measures: single frames that hold a readable code (publish → verdict received), and burst
attempts (frames of one held code at 8 fps, each a little different — the hand moves — until the
verdict, at most 5 s), counted over attempts whose code is readable in at least one of its frames.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from gateway.adapters.camera.decode import decode
from tools.camera.synth import Scene, from_jpeg, jpeg, realistic, render
from tools.sim.stack import LocalStack

DEVICE = "bench-cam"
FPS = 8
BURST_S = 5.0


def _nodelay(client: Any, userdata: Any, sock: Any) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class Board:
    """The device side: frames out on its topic, verdicts in (time of arrival per sid)."""

    def __init__(self, host: str, port: int) -> None:
        self.got: dict[str, float] = {}
        self.cv = threading.Condition()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=DEVICE, clean_session=True)
        self.c.on_message = self._on_message
        # Like the firmware's client: no Nagle delay on our small packets (it would add ~40 ms).
        self.c.on_socket_open = _nodelay
        ready = threading.Event()
        self.c.on_subscribe = lambda *a: ready.set()
        self.c.connect(host, port, keepalive=30)
        self.c.loop_start()
        self.c.subscribe(f"hx/v1/dev/{DEVICE}/verdict", qos=1)
        if not ready.wait(10):
            raise RuntimeError("subscription not acknowledged")

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        sid = json.loads(msg.payload).get("sid")
        with self.cv:
            self.got.setdefault(sid, time.perf_counter())
            self.cv.notify_all()

    def frame(self, sid: str, n: int, data: bytes, w: int, h: int) -> float:
        head = {"v": 1, "sid": sid, "n": n, "fmt": "jpeg", "w": w, "h": h, "dir": "in", "at": 0}
        t = time.perf_counter()
        self.c.publish(f"hx/v1/dev/{DEVICE}/frame", json.dumps(head).encode() + b"\n" + data, qos=0)
        return t

    def wait(self, sid: str, until: float) -> float | None:
        with self.cv:
            while sid not in self.got:
                left = until - time.perf_counter()
                if left <= 0:
                    return None
                self.cv.wait(left)
            return self.got[sid]

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def _pct(xs: list[float], q: float) -> float:
    return round(float(np.percentile(np.array(xs), q)), 1) if xs else float("nan")


def _readable_frames(rng: np.random.Generator, n: int, w: int, h: int, tag: str) -> list[tuple[str, bytes]]:
    out: list[tuple[str, bytes]] = []
    i = 0
    while len(out) < n:
        s, q = realistic(rng, w, h, f"HXR-{tag}-{i:05d}")
        i += 1
        data = jpeg(render(s), q)
        if decode(from_jpeg(data)).texts == (s.text,):
            out.append((s.text, data))
    return out


def _jitter(rng: np.random.Generator, base: Scene) -> Scene:
    return replace(
        base,
        blur=base.blur * float(rng.uniform(0.6, 1.4)),
        tilt=max(0.0, base.tilt + float(rng.uniform(-5, 5))),
        roll=base.roll + float(rng.uniform(-5, 5)),
        dx=base.dx + float(rng.uniform(-0.03, 0.03)),
        dy=base.dy + float(rng.uniform(-0.03, 0.03)),
        seed=int(rng.integers(1 << 30)),
    )


def _attempts(rng: np.random.Generator, n: int) -> tuple[list[tuple[str, list[bytes]]], int]:
    """n attempts whose code is readable in at least one frame; and how many drawn were not."""
    out: list[tuple[str, list[bytes]]] = []
    unreadable = 0
    while len(out) < n:
        base, q = realistic(rng, 320, 240, f"HXA-{len(out) + unreadable:05d}")
        frames = [jpeg(render(_jitter(rng, base)), q) for _ in range(int(FPS * BURST_S))]
        if any(decode(from_jpeg(f)).texts == (base.text,) for f in frames):
            out.append((base.text, frames))
        else:
            unreadable += 1
    return out, unreadable


def run_roundtrip(attempts: int, seed: int, work: Path, log: Callable[[str], None]) -> dict[str, Any]:
    rng = np.random.default_rng([seed, 7])
    log("loopback: rendering frames ...")
    singles = {w: _readable_frames(rng, 150, w, h, str(w)) for w, h in ((320, 240), (640, 480))}
    bursts, unreadable = _attempts(rng, attempts)
    stack = LocalStack(work).start()
    try:
        codes = [c for shots in singles.values() for c, _ in shots] + [c for c, _ in bursts]
        stack.create_orders([{"code": c, "title": "Bench", "quantity": 1} for c in codes])
        board = Board(stack.broker.host, stack.broker.port)
        try:
            out: dict[str, Any] = {}
            for w, shots in singles.items():
                rtt = []
                for i, (_, data) in enumerate(shots):
                    sid = f"s{w}-{i}"
                    t = board.frame(sid, 0, data, w, w * 3 // 4)
                    got = board.wait(sid, t + 5)
                    if got is not None:
                        rtt.append((got - t) * 1000)
                out[f"frame_to_verdict_{w}"] = {
                    "frames": len(shots),
                    "answered": len(rtt),
                    "p50_ms": _pct(rtt, 50),
                    "p99_ms": _pct(rtt, 99),
                }
                log(f"  frame → verdict at {w}: {out[f'frame_to_verdict_{w}']}")
            times = []
            for i, (_, frames) in enumerate(bursts):
                sid = f"a-{i}"
                t0 = time.perf_counter()
                got = None
                for n, data in enumerate(frames):
                    board.frame(sid, n, data, 320, 240)
                    got = board.wait(sid, t0 + (n + 1) / FPS)
                    if got is not None:
                        break
                got = got or board.wait(sid, t0 + BURST_S + 1)
                times.append((got - t0) * 1000 if got is not None else float("inf"))
            fin = [t for t in times if t != float("inf")]
            out["burst_attempts"] = {
                "attempts": len(times),
                "drawn_unreadable": unreadable,
                "within_2s_pct": round(100 * sum(t <= 2000 for t in times) / max(1, len(times)), 1),
                "answered_pct": round(100 * len(fin) / max(1, len(times)), 1),
                "p50_ms": _pct(fin, 50),
                "p99_ms": _pct(fin, 99),
            }
            log(f"  burst attempts (8 fps, ≤ 5 s): {out['burst_attempts']}")
            out["gateway_camera_health"] = stack.api("GET", "/api/health").get("camera")
            return out
        finally:
            board.close()
    finally:
        stack.stop()
