# The `camera` module of the micropython-camera-API firmware (v0.6.2), as far as hx/boards/esp32cam.py
# uses it. Written for the type check: the stock ESP32 stubs describe another camera module.
class PixelFormat:
    JPEG: int
    GRAYSCALE: int

class FrameSize:
    QVGA: int
    VGA: int

class GrabMode:
    WHEN_EMPTY: int
    LATEST: int

class Camera:
    def __init__(
        self,
        *,
        data_pins: list[int] | None = ...,
        pclk_pin: int | None = ...,
        vsync_pin: int | None = ...,
        href_pin: int | None = ...,
        sda_pin: int | None = ...,
        scl_pin: int | None = ...,
        xclk_pin: int | None = ...,
        xclk_freq: int = ...,
        powerdown_pin: int = ...,
        reset_pin: int = ...,
        pixel_format: int = ...,
        frame_size: int = ...,
        jpeg_quality: int = ...,
        fb_count: int = ...,
        grab_mode: int = ...,
    ) -> None: ...
    def frame_available(self) -> bool: ...
    def capture(self) -> memoryview: ...
    def free_buffer(self) -> None: ...
    def deinit(self) -> None: ...
