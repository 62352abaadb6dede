# The camera of ESP32 camera boards (OV2640 on the DVP port, frames in PSRAM): the board layer's only
# user of the `camera` module of the micropython-camera-API firmware (hardware/camera-boards.md).
import asyncio

from camera import Camera as _Camera
from camera import FrameSize, GrabMode, PixelFormat

SIZES = {"QVGA": (320, 240), "VGA": (640, 480)}


class Camera:
    """capture() -> the latest frame (a memoryview into the driver's PSRAM frame buffer, valid until
    the next capture), as JPEG or 8-bit grayscale at QVGA or VGA. Never blocks the event loop: the
    driver grabs frames in its own task, we only wait (yielding) until one is there."""

    def __init__(self, pins, cfg):
        self.fmt = cfg["fmt"]
        self.width, self.height = SIZES[cfg["size"]]
        self.cam = _Camera(
            data_pins=pins["data"], vsync_pin=pins["vsync"], href_pin=pins["href"], pclk_pin=pins["pclk"],
            xclk_pin=pins["xclk"], xclk_freq=pins["xclk_freq"], sda_pin=pins["sda"], scl_pin=pins["scl"],
            powerdown_pin=pins["pwdn"], reset_pin=pins["reset"],
            pixel_format=PixelFormat.JPEG if self.fmt == "jpeg" else PixelFormat.GRAYSCALE,
            frame_size=FrameSize.QVGA if cfg["size"] == "QVGA" else FrameSize.VGA,
            jpeg_quality=cfg["quality"], fb_count=2, grab_mode=GrabMode.LATEST)

    async def capture(self):
        self.cam.free_buffer()  # hand the last frame back: the driver fills the next one
        for _ in range(200):  # ~1 s: a camera that stops delivering is reported, not waited on forever
            if self.cam.frame_available():
                return self.cam.capture()
            await asyncio.sleep_ms(5)
        return None
