# Tests of the simulator's process runner, pty scanner and control channel, on the real MicroPython VM.
#
# The firmware under test here is a tiny stand-in board program (below) so these tests pin down the
# runner's own contract (env vars, flash persistence, power cut, events, frames, buttons) independently of
# the real firmware, which the e2e tests exercise.
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tools.sim import noise
from tools.sim.control import ControlError, ControlServer, request
from tools.sim.fleet import Fleet
from tools.sim.gm65 import ACK, FrameType, ReplyParser, Zone, encode_command
from tools.sim.pty_scanner import PtyScanner
from tools.sim.runner import DeviceConfig, EventLog, FirmwareProcess, MqttTarget, SimError

STAND_IN = r"""
import os, json, time, termios, framebuf
flash, out, uart = os.getenv('HX_FLASH'), os.getenv('HX_OUT'), os.getenv('HX_UART')
cfg = json.load(open(flash + '/config.json'))
try:
    boots = int(open(flash + '/boots').read()) + 1
except OSError:
    boots = 1
f = open(flash + '/boots', 'w'); f.write(str(boots)); f.close()
log = open(out + '/events.log', 'a')
def ev(kind, **kw):
    kw['t'] = time.ticks_ms(); kw['ev'] = kind
    log.write(json.dumps(kw) + '\n'); log.flush()
ev('boot', n=boots, device=cfg['device'])
port = open(uart, 'r+b')
termios.setraw(port.fileno())
a = termios.tcgetattr(port.fileno())
a[6][6] = 0  # VMIN: reads return what is there (see the micropython-on-host notes)
a[6][5] = 0  # VTIME
termios.tcsetattr(port.fileno(), termios.TCSANOW, a)
buf = bytearray(128 * 8)
fb = framebuf.FrameBuffer(buf, 128, 64, framebuf.MONO_HLSB)
def show(text):
    fb.fill(0); fb.text(text, 0, 0, 1)
    f = open(out + '/oled.pbm.tmp', 'wb'); f.write(b'P4\n128 64\n'); f.write(buf); f.close()
    os.rename(out + '/oled.pbm.tmp', out + '/oled.pbm')
show('READY ' + cfg['device'])
port.write(b'\x7e\x00\x07\x01\x00\xe2\x01\xab\xcd')
line = b''
btn_off = 0
while True:
    data = port.read(64) or b''
    for b in data:
        if b == 10:
            text = line.rstrip(b'\r')
            try:
                show('GOT ' + text.decode())
                ev('scan', code=text.decode())
            except Exception:
                ev('junk', n=len(text))
            line = b''
        else:
            line += bytes([b])
            if line.startswith(b'\x02\x00') and len(line) == 7:
                ev('probe', reply=line.hex()); line = b''
    try:
        size = os.stat(out + '/buttons')[6]
    except OSError:
        size = 0
    if size > btn_off:
        f = open(out + '/buttons'); f.seek(btn_off); ev('button', b=f.read().strip()); f.close()
        btn_off = size
    time.sleep_ms(10)
"""


@pytest.fixture
def stand_in(tmp_path: Path) -> Path:
    path = tmp_path / "stand_in_main.py"
    path.write_text(STAND_IN)
    return path


def test_pty_scanner_answers_the_probe_and_emits_codes() -> None:
    with PtyScanner() as scanner:
        fd = os.open(scanner.port, os.O_RDWR | os.O_NOCTTY)
        try:
            os.write(fd, encode_command(FrameType.READ, Zone.VERSION, b"\x01")[:5])
            time.sleep(0.05)
            os.write(fd, encode_command(FrameType.READ, Zone.VERSION, b"\x01")[5:])
            replies: list[object] = []
            parser = ReplyParser()
            deadline = time.monotonic() + 5
            while not replies and time.monotonic() < deadline:
                try:
                    replies += parser.feed(os.read(fd, 64))
                except BlockingIOError:
                    time.sleep(0.01)
            assert [(r.status, r.data) for r in replies] == [(0, b"\x87")]  # type: ignore[attr-defined]
            os.write(fd, encode_command(FrameType.WRITE, Zone.TAIL, bytes([0b00 << 5])))
            time.sleep(0.2)
            assert os.read(fd, 64) == ACK
            assert scanner.present("HX-42") == b"HX-42\r"
            time.sleep(0.05)
            assert os.read(fd, 64) == b"HX-42\r"
            scanner.inject(b"\x00\xff")
            time.sleep(0.05)
            assert os.read(fd, 64) == b"\x00\xff"
            assert bytes(scanner.received).endswith(encode_command(FrameType.WRITE, Zone.TAIL, b"\x00"))
        finally:
            os.close(fd)


def test_flush_drops_bytes_nobody_read() -> None:
    with PtyScanner() as scanner:
        scanner.present("LOST")
        scanner.flush()
        fd = os.open(scanner.port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            time.sleep(0.1)
            try:
                left = os.read(fd, 64)  # raw with VMIN=0: an empty line reads as b""
            except BlockingIOError:
                left = b""
            assert left == b""
            scanner.present("KEPT")
            time.sleep(0.1)
            assert os.read(fd, 64) == b"KEPT\r\n"
        finally:
            os.close(fd)


def test_event_log_reads_complete_lines_only(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    log = EventLog(path)
    assert log.poll() == []
    path.write_bytes(b'{"ev": "boot"}\nnot json\n{"ev": "scr')
    assert log.poll() == [{"ev": "boot"}]
    assert log.bad_lines == 1
    with path.open("ab") as fh:
        fh.write(b'een"}\n')
    assert log.poll() == [{"ev": "screen"}]
    path.write_bytes(b'{"ev": "again"}\n')  # replaced by a shorter file
    assert log.poll() == [{"ev": "again"}]


def test_mqtt_url_parsing() -> None:
    assert MqttTarget.parse("mqtt://u:p@10.0.0.2:1999") == MqttTarget("10.0.0.2", 1999, "u", "p")
    assert MqttTarget.parse("mqtt://broker").port == 1883
    for bad in ("http://x:1", "mqtt://", "nonsense"):
        with pytest.raises(SimError):
            MqttTarget.parse(bad)


def test_runner_starts_scans_power_cuts_and_reboots(tmp_path: Path, stand_in: Path) -> None:
    cfg = DeviceConfig(device="bench-1", mqtt=MqttTarget("127.0.0.1", 1999))
    dev = FirmwareProcess(tmp_path / "dev", cfg, main=stand_in, heap_k=256)
    try:
        dev.start()
        boot = dev.wait_event(lambda e: e.get("ev") == "boot", what="boot")
        assert boot["n"] == 1 and boot["device"] == "bench-1"
        probe = dev.wait_event(lambda e: e.get("ev") == "probe", what="probe reply")
        assert probe["reply"] == "0200000187d25e"
        dev.wait_text("READY bench-1")

        mark = dev.mark()
        assert dev.scan("HX-ORDER-1") == b"HX-ORDER-1\r\n"
        dev.wait_event(lambda e: e.get("code") == "HX-ORDER-1", after=mark, what="scan")
        frame = dev.wait_text("GOT HX-ORDER-1")
        assert frame.text_lines() == ["GOT HX-ORDER-1"]
        png = dev.screenshot(tmp_path / "shot.png")
        assert png.stat().st_size > 0

        dev.press("ok")
        dev.wait_event(lambda e: e.get("ev") == "button" and e.get("b") == "ok", what="button")

        dev.scanner.inject(noise.garbage_mix(seed=1))
        assert dev.alive

        dev.kill()
        assert not dev.alive
        dev.scan("WHILE-OFF")  # lost, as on a real UART with the MCU off
        dev.start()
        dev.wait_event(lambda e: e.get("ev") == "boot" and e.get("n") == 2, what="second boot")
        time.sleep(0.3)
        assert not any(e.get("code") == "WHILE-OFF" for e in dev.events("scan"))
        assert dev.config.to_json()["mqtt"]["port"] == 1999
    finally:
        dev.close()


def test_runner_reports_a_crashing_firmware(tmp_path: Path) -> None:
    crash = tmp_path / "crash.py"
    crash.write_text("raise RuntimeError('boom')\n")
    dev = FirmwareProcess(tmp_path / "dev", DeviceConfig(), main=crash)
    try:
        dev.start()
        with pytest.raises(SimError, match="boom"):
            dev.wait_event(lambda e: True, timeout=10)
    finally:
        dev.close()


def test_fleet_over_the_control_channel(tmp_path: Path, stand_in: Path) -> None:
    fleet = Fleet(tmp_path / "sim", devices=2)
    for dev in fleet.devices.values():
        dev.main = stand_in
    server = ControlServer(tmp_path / "sim" / "control.sock", fleet.handle)
    try:
        fleet.start()
        server.start()
        seen: list[str] = []
        fleet.subscribe(lambda name, item: seen.append(name))
        for dev in fleet.devices.values():
            dev.wait_text("READY")
        sock = tmp_path / "sim" / "control.sock"
        devices = request(sock, {"cmd": "devices"})["devices"]
        assert sorted(devices) == ["dev-1", "dev-2"] and all(d["alive"] for d in devices.values())
        resp = request(sock, {"cmd": "scan", "device": "dev-2", "code": "CODE-7", "wait": 10})
        assert resp["ok"] and resp["screen"] == ["GOT CODE-7"]
        assert fleet["dev-1"].screen() is not None and not fleet["dev-1"].screen().contains_text("CODE-7")  # type: ignore[union-attr]
        shot = request(sock, {"cmd": "screen", "device": "dev-2"})
        assert shot["lines"] == ["GOT CODE-7"] and Path(shot["png"]).exists()
        assert request(sock, {"cmd": "scan", "device": "dev-9", "code": "X"})["ok"] is False
        assert request(sock, {"cmd": "scan", "code": ""})["ok"] is False
        assert request(sock, {"cmd": "nope"})["ok"] is False
        assert request(sock, {"cmd": "garbage", "device": "dev-1"})["ok"]
        assert request(sock, {"cmd": "reboot", "device": "dev-1"})["ok"]
        fleet["dev-1"].wait_event(lambda e: e.get("ev") == "boot" and e.get("n") == 2, what="reboot")
        deadline = time.monotonic() + 5
        while not {"dev-1", "dev-2"} <= set(seen) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert {"dev-1", "dev-2"} <= set(seen)
    finally:
        server.close()
        fleet.close()
    with pytest.raises(ControlError):
        request(tmp_path / "sim" / "control.sock", {"cmd": "devices"})


def test_runner_restarts_a_firmware_that_resets_itself(tmp_path: Path) -> None:
    script = tmp_path / "resets.py"
    script.write_text(
        "import os, sys, json, time\n"
        "flash, out = os.getenv('HX_FLASH'), os.getenv('HX_OUT')\n"
        "try:\n    n = int(open(flash + '/n').read()) + 1\nexcept OSError:\n    n = 1\n"
        "f = open(flash + '/n', 'w'); f.write(str(n)); f.close()\n"
        "log = open(out + '/events.log', 'a'); log.write(json.dumps({'ev': 'boot', 'n': n}) + '\\n'); log.close()\n"
        "if n == 1:\n    sys.exit(75)\n"
        "while True:\n    time.sleep(1)\n"
    )
    dev = FirmwareProcess(tmp_path / "dev", DeviceConfig(), main=script)
    try:
        dev.start()
        dev.wait_event(lambda e: e.get("n") == 2, what="boot after the self-reset")
        assert dev.alive and dev.boots == 2
    finally:
        dev.close()


def test_paced_line_trickles_bytes_at_the_baud_rate() -> None:
    with PtyScanner(pace_baud=2400) as scanner:  # ~4.2 ms a byte
        fd = os.open(scanner.port, os.O_RDWR | os.O_NOCTTY)
        try:
            started = time.monotonic()
            assert scanner.present("0123456789") == b"0123456789\r\n"
            took = time.monotonic() - started
            got = b""
            deadline = time.monotonic() + 5
            while len(got) < 12 and time.monotonic() < deadline:
                got += os.read(fd, 64)
            assert got == b"0123456789\r\n"
            assert took >= 12 * 10 / 2400  # the line really is that slow (a lower bound, not a speed test)
        finally:
            os.close(fd)
