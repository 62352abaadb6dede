# The camera boards' board layer on the VM: the esp32 layer builds the camera from the profile's pins
# (a fake `camera` module stands in for the micropython-camera-API firmware's), and the unix camera
# reads what the simulator shows from files.
import asyncio
import json
import os
import sys

import t
from test_boards import _fake_modules, _Mod

MADE = []


class _Cam:
    def __init__(self, **kw):
        MADE.append(kw)
        self.frames = [None, None, memoryview(b"\xff\xd8jpeg\xff\xd9")]  # ready on the third look
        self.freed = 0

    def free_buffer(self):
        self.freed += 1

    def frame_available(self):
        return self.frames[0] is not None or self.frames.pop(0) is not None or bool(self.frames)

    def capture(self):
        return self.frames[-1]


class _Enum:
    JPEG, GRAYSCALE, QVGA, VGA, LATEST, WHEN_EMPTY = 4, 3, 6, 10, 1, 0


def _fake_camera():
    m = _Mod()
    m.Camera = _Cam
    m.PixelFormat = m.FrameSize = m.GrabMode = _Enum
    sys.modules["camera"] = m


def _cleanup():
    for name in ("machine", "network", "camera", "hx.boards.esp32cam"):
        if name in sys.modules:
            del sys.modules[name]


def test_camera_boards_build_their_camera_from_the_profile():
    _fake_modules()
    _fake_camera()
    from hx.boards import esp32
    from hx.config import validate

    cfg = validate({"device": "cam-1"})["camera"]
    for name in ("esp32-cam-aithinker", "xiao-esp32s3-sense"):
        prof = json.loads(t.read(t.HARDWARE + "/boards/%s.json" % name))
        MADE.clear()
        cam = esp32.Board(prof).camera(cfg)
        p = prof["camera"]
        kw = MADE[0]
        t.eq(kw["data_pins"], p["data"], name + " data pins D0..D7")
        t.eq(
            (kw["vsync_pin"], kw["href_pin"], kw["pclk_pin"], kw["xclk_pin"]),
            (p["vsync"], p["href"], p["pclk"], p["xclk"]),
            name,
        )
        t.eq((kw["sda_pin"], kw["scl_pin"], kw["powerdown_pin"]), (p["sda"], p["scl"], p["pwdn"]), name)
        t.eq(
            (kw["pixel_format"], kw["frame_size"], kw["jpeg_quality"]),
            (4, 10, cfg["quality"]),
            name + " VGA JPEG",
        )
        t.eq((cam.fmt, cam.width, cam.height), ("jpeg", 640, 480))
        frame = asyncio.run(cam.capture())
        t.eq(bytes(frame), b"\xff\xd8jpeg\xff\xd9", "waits (yielding) until a frame is there")
        t.eq(cam.cam.freed, 1, "the last frame is handed back first")
    devkit = json.loads(t.read(t.HARDWARE + "/boards/esp32-devkitc.json"))
    t.eq(esp32.Board(devkit).camera(cfg), None, "a UART board has no camera")
    _cleanup()


def test_a_camera_that_does_not_start_is_reported_not_fatal():
    _fake_modules()
    m = _Mod()

    def broken(**kw):
        raise OSError("ESP_ERR_CAMERA_NOT_DETECTED")

    m.Camera = broken
    m.PixelFormat = m.FrameSize = m.GrabMode = _Enum
    sys.modules["camera"] = m
    from hx.boards import esp32
    from hx.config import validate

    prof = json.loads(t.read(t.HARDWARE + "/boards/esp32-cam-aithinker.json"))
    b = esp32.Board(prof)
    seen = []
    b.event = lambda ev, data=None: seen.append((ev, data))
    t.eq(b.camera(validate({"device": "cam-1"})["camera"]), None)
    t.eq(seen[0][0], "camera")
    _cleanup()


def test_unix_camera_shows_the_scene_file_else_the_empty_one():
    d = t.tmpdir()
    os.putenv("HX_FLASH", d + "/flash")
    os.putenv("HX_OUT", d + "/out")
    os.putenv("HX_CAMERA", d + "/cam")
    os.mkdir(d + "/cam")
    from hx.boards.unix import Board
    from hx.config import validate

    cam = Board().camera(validate({"device": "cam-1"})["camera"])
    t.eq(asyncio.run(cam.capture()), None, "nothing to see yet")
    with open(d + "/cam/none.jpg", "wb") as f:
        f.write(b"empty")
    t.eq(bytes(asyncio.run(cam.capture())), b"empty")
    with open(d + "/cam/scene.jpg", "wb") as f:
        f.write(b"code")
    t.eq(bytes(asyncio.run(cam.capture())), b"code")
    os.remove(d + "/cam/scene.jpg")
    t.eq(bytes(asyncio.run(cam.capture())), b"empty", "the code was taken away")
    os.putenv("HX_CAMERA", "")
