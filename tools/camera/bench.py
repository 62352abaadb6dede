"""`make bench-camera`: the gateway's frame decoder on the project's own generated frame set.

Scores decode rate per condition (one factor varied at a time around an ordinary shot), over
realistic shots (every factor drawn at once, tools/camera/synth.realistic) at 320×240 and 640×480,
misreads (a wrong text: must be 0) and false positives on negatives (no code, barcodes only, QR
look-alikes: must be 0), p50/p99 decode time; then the frame→verdict round trip and burst attempts
through a real Mosquitto and gateway on loopback (tools/camera/roundtrip.py).

Run: `python -m tools.camera.bench [--realistic N] [--per-level N] [--seed S] [--no-roundtrip]`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from gateway.adapters.camera.decode import decode
from tools.camera.synth import Scene, barcode_only, from_jpeg, jpeg, lookalike, no_code, realistic, render

SIZES = ((320, 240), (640, 480))
KEEP_MISREADS: Path | None = None  # main() keeps misread frames in var/misreads/ (NumPy arrays)


@dataclass
class Score:
    frames: int = 0
    read: int = 0
    misread: int = 0
    ms: list[float] = field(default_factory=list)  # wall time (what the budget sees, load included)
    cpu: list[float] = field(default_factory=list)  # this thread's CPU time (the decoder's own cost)
    stages: dict[str, int] = field(default_factory=dict)

    def add(self, truth: str, frame: np.ndarray) -> None:
        c0 = time.thread_time()
        r = decode(frame)
        self.cpu.append((time.thread_time() - c0) * 1000)
        self.frames += 1
        self.ms.append(r.ms)
        if r.texts == (truth,):
            self.read += 1
            self.stages[r.stage] = self.stages.get(r.stage, 0) + 1
        elif r.texts:
            self.misread += 1
            # Every misread is a bug to look at: say what was read instead, and keep the frame.
            print(f"MISREAD: {truth!r} read as {r.texts!r} (stage {r.stage or 'plain'})", flush=True)
            if KEEP_MISREADS is not None:
                KEEP_MISREADS.mkdir(parents=True, exist_ok=True)
                np.save(KEEP_MISREADS / f"{truth}.npy", frame)

    def row(self) -> dict[str, object]:
        ms = np.array(self.ms or [0.0])
        cpu = np.array(self.cpu or [0.0])
        return {
            "frames": self.frames,
            "read_pct": round(100 * self.read / max(1, self.frames), 1),
            "misreads": self.misread,
            "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p99_ms": round(float(np.percentile(ms, 99)), 2),
            "p99_cpu_ms": round(float(np.percentile(cpu, 99)), 2),
            "stages": dict(sorted(self.stages.items())),
        }


def _code(i: int) -> str:
    return f"HXO-{i:06d}-{(i * 7919) % 10000:04d}"


def _nominal(rng: np.random.Generator, w: int, h: int, text: str) -> Scene:
    k = w / 320
    return Scene(
        text=text,
        width=w,
        height=h,
        ppm=0.5 * h / 33,
        tilt=15,
        roll=float(rng.uniform(-180, 180)),
        blur=0.5 * k,
        noise=4,
        screen=bool(rng.random() < 0.5),
        seed=int(rng.integers(1 << 30)),
    )


# factor -> [(level label, how the nominal shot changes, JPEG quality)]
Change = Callable[[Scene, int], Scene]


def _set(**fields: Any) -> Change:
    return lambda s, w: replace(s, **fields)


def _distance(frac: float) -> Change:
    return lambda s, w: replace(s, ppm=frac * s.height / 33)


def _blur(sigma_at_320: float) -> Change:
    return lambda s, w: replace(s, blur=sigma_at_320 * w / 320)


CONDITIONS: dict[str, list[tuple[str, Change, int]]] = {
    "distance (code height)": [(f"{int(f * 100)} %", _distance(f), 40) for f in (0.2, 0.3, 0.45, 0.7)],
    "tilt": [(f"{t}°", _set(tilt=t), 40) for t in (0, 20, 35, 50)],
    "blur σ (at 320)": [(f"{b} px", _blur(b), 40) for b in (0.0, 0.8, 1.5, 2.5)],
    "exposure": [
        (lbl, _set(gain=g, offset=o), 40)
        for lbl, g, o in (
            ("dark ×0.3", 0.3, 0),
            ("dim ×0.6", 0.6, 0),
            ("normal", 1.0, 0),
            ("bright ×1.6+30", 1.6, 30),
        )
    ],
    "glare": [(f"{g}", _set(glare=g), 40) for g in (0.0, 0.3, 0.6, 0.9)],
    "screen moiré": [(f"{m}", _set(screen=True, moire=m), 40) for m in (0.0, 0.4, 0.8)],
    "dark mode (inverted)": [("inverted screen", _set(screen=True, invert=True, moire=0.3), 40)],
    "JPEG quality": [(f"q{q}", _set(), q) for q in (10, 20, 40, 60)],
}


def conditions(per_level: int, seed: int) -> Iterator[tuple[str, str, int, Score]]:
    for factor, levels in CONDITIONS.items():
        for label, change, q in levels:
            for w, h in SIZES:
                rng = np.random.default_rng([seed, zlib.crc32((factor + label).encode()), w])
                sc = Score()
                for i in range(per_level):
                    s = change(_nominal(rng, w, h, _code(i)), w)
                    sc.add(s.text, from_jpeg(jpeg(render(s), q)))
                yield factor, label, w, sc


def realistic_set(n: int, seed: int) -> dict[int, Score]:
    out = {}
    for w, h in SIZES:
        rng = np.random.default_rng([seed, w])
        sc = Score()
        for i in range(n):
            s, q = realistic(rng, w, h, _code(i))
            sc.add(s.text, from_jpeg(jpeg(render(s), q)))
        out[w] = sc
    return out


def negatives(n: int, seed: int) -> dict[str, int]:
    """False positives per kind (anything read in a frame holding no order code)."""
    out = {}
    for name, make in (("no code", no_code), ("barcode only", barcode_only), ("QR look-alike", lookalike)):
        hits = 0
        for w, h in SIZES:
            rng = np.random.default_rng([seed, w, len(name)])
            for _ in range(n):
                base = _nominal(rng, w, h, "")
                s = replace(base, ppm=float(rng.uniform(2, 8)) * w / 320, glare=float(rng.uniform(0, 0.5)))
                if decode(from_jpeg(jpeg(make(s), int(rng.integers(10, 61))))).texts:
                    hits += 1
        out[name] = hits
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--realistic", type=int, default=600, help="realistic shots per resolution")
    ap.add_argument("--per-level", type=int, default=40, help="shots per condition level and resolution")
    ap.add_argument("--negatives", type=int, default=100, help="negatives per kind and resolution")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--attempts", type=int, default=100, help="burst attempts on loopback")
    ap.add_argument("--no-roundtrip", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("var/bench-camera.json"))
    a = ap.parse_args(argv)
    global KEEP_MISREADS
    KEEP_MISREADS = Path("var/misreads")
    t0 = time.monotonic()
    report: dict[str, object] = {"seed": a.seed, "load_average_at_start": list(os.getloadavg())}
    print(f"realistic shots ({a.realistic} per resolution, seed {a.seed}):")
    real = realistic_set(a.realistic, a.seed)
    total = sum(s.read for s in real.values()) / max(1, sum(s.frames for s in real.values()))
    for w, sc in real.items():
        print(f"  {w}×{w * 3 // 4}: {json.dumps(sc.row())}")
    print(f"  both: {100 * total:.1f} % read")
    report["realistic"] = {str(w): sc.row() for w, sc in real.items()} | {
        "both_read_pct": round(100 * total, 1)
    }
    print(f"conditions ({a.per_level} shots per level and resolution):")
    rows = []
    for factor, label, w, sc in conditions(a.per_level, a.seed):
        r = sc.row()
        rows.append({"factor": factor, "level": label, "width": w, **r})
        print(
            f"  {factor:24} {label:16} {w:4}: {r['read_pct']:5.1f} %  misreads {r['misreads']}  p99 {r['p99_ms']} ms"
        )
    report["conditions"] = rows
    neg = negatives(a.negatives, a.seed)
    print(f"false positives on negatives ({2 * a.negatives} frames per kind): {neg}")
    report["false_positives"] = neg
    report["misreads"] = sum(s.misread for s in real.values()) + sum(int(str(r["misreads"])) for r in rows)
    if not a.no_roundtrip:
        from tools.camera.roundtrip import run_roundtrip

        report["loopback"] = run_roundtrip(a.attempts, a.seed, Path("var/bench-camera"), print)
    report["seconds"] = round(time.monotonic() - t0, 1)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    report["load_average_at_end"] = list(os.getloadavg())
    print(f"misreads: {report['misreads']}; written {a.out} in {report['seconds']} s")
    print(f"load average at start {report['load_average_at_start']}, at end {report['load_average_at_end']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
