# The host board (MicroPython unix port): UART = a pty, OLED = PBM files, buzzer/relay/buttons = files.
import asyncio
import json
import os
import sys
import time

import framebuf
import termios

_KEEP_FRAMES = 200  # numbered OLED frames kept on disk (older ones are deleted)
_VTIME = 5  # Linux c_cc indices (this termios module does not export them)
_VMIN = 6


def _mkdirs(path):
    cur = ""
    for part in path.split("/"):
        cur = cur + "/" + part if cur or path.startswith("/") else part
        if not part:
            continue
        try:
            os.mkdir(cur)
        except OSError:
            pass


class PbmDisplay(framebuf.FrameBuffer):
    """128x64 MONO_VLSB like the SSD1306; show() writes HX_OUT/oled.pbm and oled-NNNN.pbm (P4, 1 = lit)."""

    def __init__(self, out, width=128, height=64):
        self.out = out
        self.width = width
        self.height = height
        self.buffer = bytearray(width * height // 8)
        super().__init__(self.buffer, width, height, framebuf.MONO_VLSB)
        # MONO_HLSB is exactly PBM P4's row layout (bit 7 = leftmost pixel). Frames are converted one
        # 8-row band at a time through this 128-byte buffer: a full 1 KB copy would cost the host heap
        # what the ESP32 never spends, and a per-frame 1 KB allocation can fail on a fragmented heap.
        self.band = bytearray(width)
        self.bfb = framebuf.FrameBuffer(self.band, width, 8, framebuf.MONO_HLSB)
        self.frame = 0

    def show(self):
        self.frame += 1
        head = b"P4\n%d %d\n" % (self.width, self.height)
        tmp = self.out + "/oled.pbm.tmp"
        with open("%s/oled-%04d.pbm" % (self.out, self.frame), "wb") as f, open(tmp, "wb") as g:
            f.write(head)
            g.write(head)
            for y in range(0, self.height, 8):
                self.bfb.blit(self, 0, -y)
                f.write(self.band)
                g.write(self.band)
        os.rename(tmp, self.out + "/oled.pbm")
        if self.frame > _KEEP_FRAMES:
            try:
                os.remove("%s/oled-%04d.pbm" % (self.out, self.frame - _KEEP_FRAMES))
            except OSError:
                pass
        return self.frame


class SilentPWM:
    """A PWM-like buzzer that only remembers its last settings (the buzzer task logs the pattern)."""

    def __init__(self):
        self.f = 0
        self.duty = 0

    def freq(self, f=None):
        if f is not None:
            self.f = f
        return self.f

    def duty_u16(self, d=None):
        if d is not None:
            self.duty = d
        return self.duty


class LogPin:
    """A Pin-like output whose level changes go to events.log (the relay on a turnstile)."""

    def __init__(self, board, name):
        self.board = board
        self.name = name
        self.v = 0

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = 1 if v else 0
        self.board.event(self.name, {"on": self.v})
        return self.v


class FileCamera:
    """What the camera sees is a file: HX_CAMERA/scene.jpg (or scene.gray, raw 8-bit rows) while a code
    is shown, HX_CAMERA/none.jpg otherwise. The simulator replaces them atomically (write + rename)."""

    def __init__(self, folder, cfg):
        self.folder = folder
        self.fmt = cfg["fmt"]
        self.width, self.height = (320, 240) if cfg["size"] == "QVGA" else (640, 480)
        self.ext = "jpg" if self.fmt == "jpeg" else "gray"
        self.buf = bytearray(0)  # one frame buffer, reused (the ESP32's lives in the driver's PSRAM)

    async def capture(self):
        await asyncio.sleep_ms(0)
        for name in ("scene", "none"):
            path = "%s/%s.%s" % (self.folder, name, self.ext)
            try:
                size = os.stat(path)[6]
                if size > len(self.buf):
                    self.buf = bytearray(0)  # drop the old one first: never two buffers at once
                    self.buf = bytearray(size + 4096)
                with open(path, "rb") as f:
                    n = f.readinto(self.buf)
                return memoryview(self.buf)[:n]
            except OSError:
                pass
        return None


class Board:
    name = "unix"
    fault = None  # the host always has its "pins"
    outbox_cap = 1000

    def __init__(self):
        self.fault_ms = int(os.getenv("HX_FAULT_MS") or "5000")  # BOOT FAULT on screen, then exit 75
        # The RTC's error at power-on, in seconds (a board whose clock is hours off: the fault suite).
        self.clock_offset = int(os.getenv("HX_CLOCK_OFFSET") or "0")
        self.flash = os.getenv("HX_FLASH") or "flash"
        self.out = os.getenv("HX_OUT") or self.flash + "/out"
        self.uart_path = os.getenv("HX_UART")
        _mkdirs(self.flash)
        _mkdirs(self.out)
        self._log = open(self.out + "/events.log", "a")
        self._buttons = self.out + "/buttons"
        self._btn_pos = 0
        try:
            self._btn_pos = os.stat(self._buttons)[6]  # presses while "powered off" never happened
        except OSError:
            open(self._buttons, "a").close()
        self._btn_rest = b""

    def event(self, ev, data=None):
        rec = {"t": time.time_ns() // 1000000, "ev": ev}
        if data:
            rec.update(data)
        self._log.write(json.dumps(rec) + "\n")
        self._log.flush()

    def start(self, cfg, health=None, on_turn=None):
        """Extra board tasks (name, coroutine function); the host has no WiFi to supervise and no
        watchdog (the app's health rules are tested on the esp32 layer with a fake WDT)."""
        return []

    def maintenance(self):
        return

    def scanner(self):
        """(reader, writer, set_baud) for the scanner UART, or None when HX_UART is not set."""
        if not self.uart_path:
            return None
        f = open(self.uart_path, "r+b", buffering=0)
        fd = f.fileno()
        termios.setraw(fd)
        attrs = termios.tcgetattr(fd)
        # VMIN=0/VTIME=0: a read returns what is there instead of blocking the whole VM.
        attrs[6][_VMIN] = 0
        attrs[6][_VTIME] = 0
        termios.tcsetattr(fd, termios.TCSANOW, attrs)

        def set_baud(baud):
            self.event("uart", {"baud": baud})

        return asyncio.StreamReader(f), asyncio.StreamWriter(f, {}), set_baud

    def display(self):
        return PbmDisplay(self.out)

    def camera(self, cfg):
        """A camera fed from image files when HX_CAMERA names a folder (the simulator's), else None."""
        path = os.getenv("HX_CAMERA")
        return FileCamera(path, cfg) if path else None

    def buzzer(self):
        return SilentPWM()

    def relay(self):
        return LogPin(self, "relay_pin")

    def buttons(self):
        """Names of buttons pressed since the last call: lines appended to HX_OUT/buttons."""
        try:
            size = os.stat(self._buttons)[6]
        except OSError:
            return []
        if size <= self._btn_pos:
            self._btn_pos = min(self._btn_pos, size)
            return []
        with open(self._buttons, "rb") as f:
            f.seek(self._btn_pos)
            data = f.read(size - self._btn_pos)
        self._btn_pos = size
        data = self._btn_rest + data
        lines = data.split(b"\n")
        self._btn_rest = lines.pop()
        return [ln.strip().decode() for ln in lines if ln.strip()]

    def net_up(self):
        return True

    def net_info(self):
        return "127.0.0.1", 0

    def random(self, n):
        """n random bytes (the install id)."""
        return os.urandom(n)

    def unix_time(self):
        return int(time.time()) + self.clock_offset

    def set_time(self, t):
        # The host's clock cannot be set from here: keep the difference (the gateway's clock wins).
        self.clock_offset = t - int(time.time())

    def reboot(self):
        # The VM cannot reset itself: exit with 75 and let whoever runs it (the simulator) start it again.
        self.event("reboot")
        sys.exit(75)
