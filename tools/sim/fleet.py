"""A set of simulated devices under one output dir, plus the control-channel commands they answer."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.sim import noise
from tools.sim.oled import Frame
from tools.sim.paths import FIRMWARE_MAIN
from tools.sim.pty_scanner import PtyScanner
from tools.sim.runner import DEFAULT_HEAP_K, DeviceConfig, Event, FirmwareProcess, MqttTarget, SimError

MODES = ("handheld", "turnstile")


@dataclass(frozen=True)
class ScreenChange:
    device: str
    lines: list[str]
    frame: Frame


Listener = Callable[[str, ScreenChange | Event], None]


class Fleet:
    """N firmware processes named dev-1..dev-N (or given names) in ``out/<device>/``."""

    def __init__(
        self,
        out: Path,
        *,
        devices: int | list[str] = 1,
        mqtt: MqttTarget | None = None,
        site: str = "demo",
        mode: str = "handheld",
        heap_k: int = DEFAULT_HEAP_K,
        heartbeat_s: int = 60,
        firmware: Path | None = None,
        pace_baud: int = 0,
        pick: bool = False,
        camera: bool = False,
    ) -> None:
        if mode not in MODES:
            raise SimError(f"mode must be one of {', '.join(MODES)}")
        names = devices if isinstance(devices, list) else [f"dev-{i + 1}" for i in range(devices)]
        if not names:
            raise SimError("at least one device is needed")
        self.out = Path(out).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.devices: dict[str, FirmwareProcess] = {}
        self.cameras: dict[str, Any] = {}  # name -> tools.sim.camera.SimCamera (camera boards)
        for i, name in enumerate(names):
            cfg = DeviceConfig(
                device=name,
                site=site,
                gate=f"Gate {i + 1}",
                mode=mode,
                mqtt=mqtt or MqttTarget(),
                heartbeat_s=heartbeat_s,
                extra={"pick": True} if pick and mode == "handheld" else {},
            )
            main = (firmware / "main.py") if firmware else FIRMWARE_MAIN
            env: dict[str, str] = {}
            if camera:
                from tools.sim.camera import SimCamera  # numpy/Pillow only for camera boards

                cam = self.cameras[name] = SimCamera(self.out / name / "camera")
                env = cam.env  # a turnstile's camera watches for motion (the firmware's default)
            self.devices[name] = FirmwareProcess(
                self.out / name,
                cfg,
                heap_k=heap_k,
                main=main,
                scanner=PtyScanner(pace_baud=pace_baud),
                env=env,
            )
        self._listeners: list[Listener] = []
        self._stop = threading.Event()
        self._watch: threading.Thread | None = None
        self._seen: dict[str, bytes] = {}
        self._event_idx: dict[str, int] = {}

    def __getitem__(self, name: str) -> FirmwareProcess:
        try:
            return self.devices[name]
        except KeyError:
            raise SimError(f"no device {name!r} (have: {', '.join(self.devices)})") from None

    def start(self) -> None:
        for dev in self.devices.values():
            dev.start()

    def close(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.join(timeout=2)
        for dev in self.devices.values():
            dev.close()

    # -- watching screens and events -------------------------------------------------------------
    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)
        if self._watch is None:
            self._watch = threading.Thread(target=self._watch_loop, name="sim-watch", daemon=True)
            self._watch.start()

    def _watch_loop(self) -> None:
        while not self._stop.is_set():
            for name, dev in self.devices.items():
                self._poll_device(name, dev)
            time.sleep(0.1)

    def _poll_device(self, name: str, dev: FirmwareProcess) -> None:
        dev.supervise()
        events = dev.events()
        start = self._event_idx.get(name, 0)
        self._event_idx[name] = len(events)
        for ev in events[start:]:
            self._emit(name, ev)
        frame = dev.screen()
        if frame is None:
            return
        digest = hashlib.sha1(b"".join(frame.rows)).digest()
        if self._seen.get(name) == digest:
            return
        self._seen[name] = digest
        self._emit(name, ScreenChange(name, frame.text_lines(), frame))

    def _emit(self, name: str, item: ScreenChange | Event) -> None:
        for listener in self._listeners:
            listener(name, item)

    # -- control-channel commands ---------------------------------------------------------------
    def handle(self, req: dict[str, Any]) -> dict[str, Any]:
        cmd = req.get("cmd")
        if cmd == "devices":
            return {
                "ok": True,
                "devices": {
                    n: {"alive": d.alive, "uart": d.scanner.port, "dir": str(d.workdir)}
                    for n, d in self.devices.items()
                },
            }
        dev = self[str(req.get("device") or next(iter(self.devices)))]
        if cmd == "scan":
            code = req.get("code")
            if not isinstance(code, str) or not code or len(code) > 4096:
                raise SimError("scan needs a code (1..4096 characters)")
            before = dev.screen()
            sent = dev.scan(code)
            resp: dict[str, Any] = {"ok": True, "device": dev.device, "sent": sent.decode("latin-1")}
            wait = float(req.get("wait", 0) or 0)
            if wait > 0:
                resp.update(self._await_verdict(dev, before, wait))
            return resp
        if cmd in ("show", "hide"):
            cam = self.cameras.get(dev.device)
            if cam is None:
                raise SimError(f"{dev.device} is not a camera board (start the simulator with --camera)")
            if cmd == "hide":
                cam.hide()
                return {"ok": True, "device": dev.device}
            code = req.get("code")
            if not isinstance(code, str) or not code or len(code) > 128:
                raise SimError("show needs a code (1..128 characters)")
            size = len(cam.show(code))
            return {"ok": True, "device": dev.device, "jpeg_bytes": size}
        if cmd == "press":
            dev.press(str(req.get("button", "ok")))
            return {"ok": True, "device": dev.device}
        if cmd == "garbage":
            size = int(req.get("bytes", 512))
            dev.scanner.inject(noise.garbage_mix()[:size] if size else noise.garbage_mix())
            return {"ok": True, "device": dev.device}
        if cmd == "reboot":
            dev.reboot()
            return {"ok": True, "device": dev.device}
        if cmd == "screen":
            frame = dev.screen()
            png = dev.screenshot(dev.workdir / "oled.png") if frame else None
            return {
                "ok": True,
                "device": dev.device,
                "lines": frame.text_lines() if frame else [],
                "png": str(png) if png else None,
            }
        raise SimError(f"unknown command {cmd!r}")

    @staticmethod
    def _await_verdict(dev: FirmwareProcess, before: Frame | None, wait: float) -> dict[str, Any]:
        """Wait for the screen to settle on something other than the 'checking' screen."""
        deadline = time.monotonic() + wait
        last_lines: list[str] = []
        changed = False
        while time.monotonic() < deadline:
            frame = dev.screen()
            if frame is not None and (before is None or frame.rows != before.rows):
                changed = True
                last_lines = frame.text_lines()
                text = " ".join(last_lines).lower()
                if "check" not in text and "sending" not in text:
                    break
            time.sleep(0.05)
        return {"screen": last_lines, "changed": changed}
