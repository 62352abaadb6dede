# Reads order QR codes out of one camera frame (zxing-cpp, QR only): a retry ladder in a time budget, hints.
from __future__ import annotations

import io
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import zxingcpp
from PIL import Image, ImageChops, ImageFilter

QR = zxingcpp.barcode_formats_from_str("QRCode")
# Why nothing (or nothing usable) was read; the device shows each as two OLED lines (contract "hints").
HINTS = ("none", "dark", "bright", "closer", "still", "one")
SMALL_PX = 3.0  # a symbol seen at under ~3 px per module: ask to come closer rather than hold still
# A further step starts only if it should end within this, by what it recently cost (docs/protocol.md).
BUDGET_MS = 22.0
MAX_FRAME_SIDE = 1600  # pixels: a camera frame's real size may not exceed what its header may say
MAX_FILE_PIXELS = 40_000_000  # hexiao-decode: a phone photo fits; a decompression bomb does not


@dataclass(frozen=True, slots=True)
class Decoded:
    """What one frame holds: distinct texts in reading order, and a hint when it is not exactly one."""

    texts: tuple[str, ...]
    hint: str | None
    stage: str  # the ladder step that read it: plain or a step of the ladders below ("" when none did)
    ms: float


class BadFrame(ValueError):
    """The bytes are not an image of the announced kind (a JPEG that does not open, a short gray buffer)."""


def gray_from_bytes(data: bytes | memoryview, fmt: str, width: int = 0, height: int = 0) -> np.ndarray:
    """A frame's pixels as an (h, w) uint8 array: `gray` is raw 8-bit rows, `jpeg` any JPEG (to luma)."""
    if fmt == "gray":
        if width <= 0 or height <= 0 or len(data) != width * height:
            raise BadFrame(f"gray frame of {len(data)} bytes is not {width}x{height}")
        return np.frombuffer(data, dtype=np.uint8).reshape(height, width)
    if fmt == "jpeg":
        img = _open(io.BytesIO(bytes(data)), "not a readable JPEG", ["JPEG"])
        with img:
            # The header's size is checked against MAX_SIDE; the JPEG's own is checked here, before any
            # pixel is decoded (a tiny file can hold a huge uniform image: a decompression bomb).
            if max(img.size) > MAX_FRAME_SIDE:
                raise BadFrame(f"JPEG of {img.size[0]}x{img.size[1]} is larger than any camera frame")
            return _luma(img, "not a readable JPEG")
    raise BadFrame(f"unknown frame format {fmt!r}")


def gray_from_file(path: str) -> np.ndarray:
    """Any image file Pillow reads (PNG, JPEG, PGM ...) as luma; BadFrame names the file and why not."""
    img = _open(path, f"{path}: not a readable image")
    with img:
        if img.size[0] * img.size[1] > MAX_FILE_PIXELS:  # checked before decoding a pixel
            raise BadFrame(f"{path}: image of {img.size[0]}x{img.size[1]} is too large (over 40 Mpx)")
        return _luma(img, f"{path}: not a readable image")


def _open(src: str | io.BytesIO, why: str, formats: list[str] | None = None) -> Image.Image:
    # Pillow only warns about a decompression bomb: here it is an error like any unreadable image.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(src, formats=formats)
    except (OSError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise BadFrame(f"{why}: {e}") from e


def _luma(img: Image.Image, why: str) -> np.ndarray:
    try:
        return np.asarray(img.convert("L"), dtype=np.uint8)
    except (OSError, ValueError) as e:
        raise BadFrame(f"{why}: {e}") from e


def _upscale(g: np.ndarray, k: int = 2) -> np.ndarray:
    h, w = g.shape
    return np.asarray(Image.fromarray(g).resize((w * k, h * k), Image.Resampling.BICUBIC), dtype=np.uint8)


def local_contrast(g: np.ndarray) -> np.ndarray:
    """Each pixel against its neighbourhood's mean and mean deviation (box filters in Pillow, uint8):
    lifts a code out of a glare gradient or a dim screen."""
    r = max(4, min(g.shape) // 16)
    img = Image.fromarray(g)
    mean = img.filter(ImageFilter.BoxBlur(r))
    dev = ImageChops.difference(img, mean).filter(ImageFilter.BoxBlur(r))
    m = np.asarray(mean, dtype=np.float32)
    d = np.asarray(dev, dtype=np.float32)
    out = 128.0 + 64.0 * (g.astype(np.float32) - m) / (1.25 * d + 8.0)
    return np.clip(out, 0, 255).astype(np.uint8)


_GAMMA = (255 * (np.arange(256) / 255.0) ** 0.5).astype(np.uint8)


def _gamma(g: np.ndarray) -> np.ndarray:
    """Lifts the shadows (γ 0.5): a code on a dim screen or in a dark corner gets its contrast back."""
    lifted: np.ndarray = np.take(_GAMMA, g)
    return lifted


def _sharpen(g: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(g).filter(ImageFilter.UnsharpMask(2, 150, 0)), dtype=np.uint8)


# (name, variant of the frame, whether zxing may also look at downscaled copies of it)
Stage = tuple[str, Callable[[np.ndarray], np.ndarray], bool]
# Chosen on the project's frame set (docs/benchmarks.md, tuned on other seeds than the one reported):
# at 320×240 small codes need pixels (2×, 3×, 2× of the contrast variant, 4×, 2× of the shadows
# lifted); at 640×480 sharpening, then the contrast variant, then 2×. Upscaled variants are never
# searched downscaled again (that only costs time).
SMALL_LADDER: tuple[Stage, ...] = (
    ("up2", _upscale, False),
    ("up3", lambda g: _upscale(g, 3), False),
    ("up2contrast", lambda g: _upscale(local_contrast(g)), False),
    ("up4", lambda g: _upscale(g, 4), False),
    ("up2gamma", lambda g: _upscale(_gamma(g)), False),
)
LARGE_LADDER: tuple[Stage, ...] = (
    ("sharp", _sharpen, True),
    ("contrast", local_contrast, True),
    ("up2", _upscale, False),
)
SMALL_FRAME = 400 * 300  # pixels: a QVGA frame takes the small ladder


class Costs:
    """What each step has recently cost for a frame size (a moving average, ms): a step that would end
    past the budget is not started, so the budget holds on a loaded machine too. A guess older than
    STALE_S is forgotten and the step measured afresh: one slow moment (a paused process, a busy core)
    must not keep a step off for good, since a skipped step is never measured."""

    STALE_S = 1.0

    def __init__(self) -> None:
        self.ms: dict[tuple[str, int], tuple[float, float]] = {}  # (ms, when measured, on `clock`)

    def guess(self, stage: str, size: int, now: float) -> float:
        ms, at = self.ms.get((stage, size), (0.0, now))
        return 0.0 if now - at > self.STALE_S else ms

    def seen(self, stage: str, size: int, ms: float, now: float) -> None:
        old = self.ms.get((stage, size))
        fresh = old is None or now - old[1] > self.STALE_S
        self.ms[(stage, size)] = (ms if fresh else 0.8 * old[0] + 0.2 * ms, now)  # type: ignore[index]


COSTS = Costs()


def _read(img: np.ndarray, errors: bool, downscale: bool = True) -> list[zxingcpp.Barcode]:
    return zxingcpp.read_barcodes(
        img, formats=QR, try_invert=True, try_downscale=downscale, return_errors=errors
    )


def _distinct(found: list[zxingcpp.Barcode]) -> tuple[str, ...]:
    out: list[str] = []
    for b in found:
        if b.valid and b.text and b.text not in out:
            out.append(b.text)
    return tuple(out)


def _module_px(b: zxingcpp.Barcode) -> float:
    """Pixels per module of a symbol that was found but not read (its corners; version from its size)."""
    p = b.position
    pts = [(p.top_left.x, p.top_left.y), (p.top_right.x, p.top_right.y), (p.bottom_left.x, p.bottom_left.y)]
    side = max(abs(complex(pts[1][0] - pts[0][0], pts[1][1] - pts[0][1])), 1.0)
    side = max(side, abs(complex(pts[2][0] - pts[0][0], pts[2][1] - pts[0][1])))
    return side / 25.0  # an order code is version 2 (25 modules) at error level M


def exposure_hint(g: np.ndarray) -> str | None:
    """dark / bright from the frame's histogram, or None when the exposure looks usable."""
    sample = g[::4, ::4]
    p95 = float(np.percentile(sample, 95))
    if p95 < 60 or float(sample.mean()) < 35:
        return "dark"
    if float((sample >= 250).mean()) > 0.25 or float(np.percentile(sample, 5)) > 200:
        return "bright"
    return None


def decode(
    g: np.ndarray,
    budget_ms: float = BUDGET_MS,
    clock: Callable[[], float] = time.perf_counter,
    costs: Costs = COSTS,
) -> Decoded:
    """The ladder: the frame as taken, then (each step only if it should end within the budget, by
    its recent cost) bigger, sharper or contrast-lifted variants of it, by frame size (SMALL_LADDER,
    LARGE_LADDER).

    One step ends the ladder as soon as it reads anything: a second code seen only by a later step is
    not looked for (that costs time on every frame), several codes seen by one step are all reported.
    """
    t0 = clock()
    found = _read(g, errors=True)
    texts = _distinct(found)
    stage = "plain"
    broken = [b for b in found if not b.valid]
    if not texts:
        stage = ""
        for name, fn, down in SMALL_LADDER if g.size <= SMALL_FRAME else LARGE_LADDER:
            t = clock()
            if (t - t0) * 1000 + costs.guess(name, g.size, t) > budget_ms:
                continue  # a later, cheaper step may still fit
            texts = _distinct(_read(fn(g), errors=False, downscale=down))
            done = clock()
            costs.seen(name, g.size, (done - t) * 1000, done)
            if texts:
                stage = name
                break
    ms = (clock() - t0) * 1000
    if len(texts) == 1:
        return Decoded(texts, None, stage, ms)
    if texts:
        return Decoded(texts, "one", stage, ms)
    hint = exposure_hint(g)
    if hint is None and broken:
        hint = "closer" if min(_module_px(b) for b in broken) < SMALL_PX else "still"
    return Decoded((), hint or "none", "", ms)
