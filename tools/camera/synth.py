"""Synthetic OV2640-class camera frames of an order QR (segno) on paper or a phone screen (Pillow + numpy).

One `Scene` describes a shot: how far (pixels per module), tilt and roll, blur, exposure, glare, screen
moiré, noise and JPEG quality. `render(scene)` gives the grayscale frame; `jpeg(frame, q)` the bytes a
camera board would send. Negatives (no code, barcodes only, QR look-alikes) share the background.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace

import numpy as np
import segno
from PIL import Image, ImageDraw, ImageFilter

Gray = np.ndarray  # (h, w) uint8


@dataclass(frozen=True, slots=True)
class Scene:
    """A shot of one code; the defaults are an easy frame (close, flat, sharp, well lit)."""

    text: str = "HXDEMO-VIP-0001"
    width: int = 320
    height: int = 240
    ppm: float = 5.0  # pixels per QR module (distance)
    tilt: float = 0.0  # degrees the code leans away from the camera (perspective)
    roll: float = 0.0  # degrees of rotation in the image plane
    blur: float = 0.0  # Gaussian blur radius, pixels (focus, motion)
    gain: float = 1.0  # exposure: multiplies the light
    offset: float = 0.0  # exposure: adds to the light (fog, flare)
    contrast: float = 1.0  # the code's own contrast (a dim phone screen < 1)
    glare: float = 0.0  # a specular highlight's strength, 0..1
    moire: float = 0.0  # a screen's pixel-grid beat pattern, 0..1
    noise: float = 2.0  # sensor noise sigma, grey levels
    invert: bool = False  # light modules on dark (a phone in dark mode)
    screen: bool = False  # a phone screen (dark bezel) rather than a paper ticket
    dx: float = 0.0  # code centre offset, fraction of the frame width
    dy: float = 0.0
    seed: int = 0


def qr_matrix(text: str, border: int = 4) -> np.ndarray:
    """The code's modules with its quiet zone, True = dark (as the shop's tickets print it: error level M)."""
    qr = segno.make_qr(text, error="m")
    return np.array([[bool(v) for v in row] for row in qr.matrix_iter(border=border)], dtype=bool)


def _background(rng: np.random.Generator, w: int, h: int) -> Gray:
    """A counter top or a hand: a soft gradient, a few blurry shapes and texture."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    a, b = rng.uniform(-0.3, 0.3, 2)
    base = rng.uniform(90, 170) + a * (xx - w / 2) + b * (yy - h / 2)
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(2, 6))):
        x0, y0 = rng.uniform(-0.2, 1.0, 2) * (w, h)
        x1, y1 = x0 + rng.uniform(0.1, 0.6) * w, y0 + rng.uniform(0.1, 0.6) * h
        d.ellipse((x0, y0, x1, y1), fill=int(rng.uniform(40, 220)))
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(2, 6)))
    return np.asarray(img, dtype=np.uint8)


def _homography(src: list[tuple[float, float]], dst: list[tuple[float, float]]) -> tuple[float, ...]:
    """PIL's PERSPECTIVE coefficients mapping output points `dst` back to input points `src`."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs += [u, v]
    sol = np.linalg.solve(np.array(rows, dtype=np.float64), np.array(rhs, dtype=np.float64))
    return tuple(float(c) for c in sol)


def _quad(s: Scene, side: float) -> list[tuple[float, float]]:
    """Where the card's corners land: rolled, and foreshortened + keystoned by the tilt."""
    cx, cy = s.width * (0.5 + s.dx), s.height * (0.5 + s.dy)
    t = math.radians(s.tilt)
    half = side / 2
    squeeze = math.cos(t)
    keystone = 1 + 0.6 * math.sin(t)  # the near edge looks longer than the far one
    pts = [
        (-half, -half / keystone),
        (half, -half * keystone),
        (half, half * keystone),
        (-half, half / keystone),
    ]
    pts = [(x * squeeze, y) for x, y in pts]
    r = math.radians(s.roll)
    c, n = math.cos(r), math.sin(r)
    return [(cx + x * c - y * n, cy + x * n + y * c) for x, y in pts]


def _code_layer(s: Scene, m: np.ndarray, scale: int) -> Image.Image:
    """The card as printed/lit, at `scale` px per module, before the camera: light 0..255 in L mode."""
    dark, light = 255 * (0.5 - 0.45 * s.contrast), 255 * (0.5 + 0.45 * s.contrast)
    if s.screen:
        dark, light = 255 * (0.5 - 0.48 * s.contrast), 255 * (0.5 + 0.40 * s.contrast)
    vals = np.where(m ^ s.invert, dark, light).astype(np.uint8)
    card = Image.fromarray(vals).resize((m.shape[1] * scale, m.shape[0] * scale), Image.Resampling.NEAREST)
    if s.screen:  # a phone's bezel around the screen
        pad = scale * 3
        framed = Image.new("L", (card.width + 2 * pad, card.height + 2 * pad * 2), 20)
        framed.paste(card, (pad, pad * 2))
        return framed
    return card


def render(s: Scene) -> Gray:
    """The grayscale frame the sensor would deliver for this scene (before JPEG)."""
    rng = np.random.default_rng(s.seed)
    w, h = s.width, s.height
    frame: np.ndarray = _background(rng, w, h).astype(np.float32)
    a: np.ndarray | float = 0.0  # where the card (paper or phone) is: the screen's moiré is only there
    if s.text:
        m = qr_matrix(s.text)
        scale = 8
        card = _code_layer(s, m, scale)
        # The quiet-zone-included matrix is m.shape[0] modules; the card may be larger (screen bezel).
        side = m.shape[0] * s.ppm * card.width / (m.shape[1] * scale)
        quad = _quad(s, side)
        cw, ch = card.size
        coeffs = _homography([(0, 0), (cw, 0), (cw, ch), (0, ch)], quad)
        warped = card.transform((w, h), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BICUBIC)
        mask = Image.new("L", card.size, 255).transform(
            (w, h), Image.Transform.PERSPECTIVE, coeffs, Image.Resampling.BILINEAR
        )
        a = np.asarray(mask, dtype=np.float32) / 255
        frame = frame * (1 - a) + np.asarray(warped, dtype=np.float32) * a
    return _camera(s, frame, rng, a)


def _camera(s: Scene, frame: np.ndarray, rng: np.random.Generator, where: np.ndarray | float = 1.0) -> Gray:
    """The lens and sensor: moiré (on the screen, `where`), glare, exposure, blur, noise."""
    w, h = s.width, s.height
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if s.moire > 0:
        f1, f2 = rng.uniform(0.15, 0.35), rng.uniform(0.05, 0.3)
        beat = np.sin(2 * math.pi * (xx * f1 + yy * f2)) * np.sin(2 * math.pi * (yy * 0.5 + xx * 0.02))
        frame = frame * (1 + 0.35 * s.moire * beat * where)
    if s.glare > 0:
        gx, gy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
        r = rng.uniform(0.08, 0.2) * min(w, h)
        frame = frame + 255 * 1.5 * s.glare * np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * r * r))
    frame = frame * s.gain + s.offset
    img = Image.fromarray(np.clip(frame, 0, 255).astype(np.uint8))
    if s.blur > 0:
        img = img.filter(ImageFilter.GaussianBlur(s.blur))
    out: np.ndarray = np.asarray(img, dtype=np.float32)
    if s.noise > 0:
        out = out + rng.normal(0, s.noise, out.shape)
    clipped: Gray = np.clip(out, 0, 255).astype(np.uint8)
    return clipped


def jpeg(frame: Gray, quality: int) -> bytes:
    """The frame as the camera's JPEG (grayscale, like the OV2640 in GRAYSCALE + JPEG mode)."""
    buf = io.BytesIO()
    Image.fromarray(frame).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def from_jpeg(data: bytes) -> Gray:
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("L"), dtype=np.uint8)


# -- negatives ---------------------------------------------------------------------------------------------
def _paste_flat(s: Scene, pattern: np.ndarray, rng: np.random.Generator) -> Gray:
    """A pattern (True = dark) pasted roughly in the middle, then the same camera."""
    frame = _background(rng, s.width, s.height).astype(np.float32)
    ph, pw = pattern.shape
    y0, x0 = (s.height - ph) // 2, (s.width - pw) // 2
    sub = np.where(pattern, 30.0, 225.0)
    frame[y0 : y0 + ph, x0 : x0 + pw] = sub
    return _camera(s, frame, rng)


def barcode_only(s: Scene) -> Gray:
    """A 1-D barcode (random bar widths, like an EAN or Code 128 label) and no QR."""
    rng = np.random.default_rng(s.seed)
    widths = rng.integers(1, 5, 60) * max(1, int(s.ppm / 2))
    bars = np.repeat(np.arange(len(widths)) % 2 == 0, widths)[None, :]
    bars = np.pad(bars, ((0, 0), (10, 10)))
    rows = int(s.height * 0.35)
    pattern = np.repeat(bars, rows, axis=0)[:, : s.width - 4]
    return _paste_flat(s, pattern, rng)


def lookalike(s: Scene) -> Gray:
    """Three finder-like squares and random modules: looks like a QR, carries nothing (no format info)."""
    rng = np.random.default_rng(s.seed)
    n = 29
    m = rng.random((n, n)) < 0.5
    finder = np.ones((7, 7), dtype=bool)
    finder[1:6, 1:6] = False
    finder[2:5, 2:5] = True
    for y, x in ((0, 0), (0, n - 7), (n - 7, 0)):
        m[y : y + 7, x : x + 7] = finder
    m = np.pad(m, 4)
    px = max(2, int(s.ppm))
    pattern = np.kron(m, np.ones((px, px), dtype=bool))[: s.height - 4, : s.width - 4]
    return _paste_flat(s, pattern, rng)


def no_code(s: Scene) -> Gray:
    return render(replace(s, text=""))


def realistic(rng: np.random.Generator, width: int, height: int, text: str) -> tuple[Scene, int]:
    """A handheld shot of a ticket or phone at a counter, drawn from ranges fixed before any decoder ran
    on them (code spanning 30–80 % of the frame height, tilt ≤ 40°, any roll, blur σ ≤ 1.2 px at 320×240,
    under- and over-exposure, glare on 30 % of shots, screens in 60 % with moiré and dark mode): the
    scene and its JPEG quality (10–60, the camera's range)."""
    k = width / 320
    screen = bool(rng.random() < 0.6)
    frac = rng.uniform(0.3, 0.8)
    s = Scene(
        text=text,
        width=width,
        height=height,
        ppm=frac * height / 33,
        tilt=float(rng.uniform(0, 40)),
        roll=float(rng.uniform(-180, 180)),
        blur=float(rng.uniform(0, 1.2)) * k,
        gain=float(rng.uniform(0.45, 1.5)),
        offset=float(rng.uniform(-10, 40)),
        contrast=float(rng.uniform(0.5, 1.0)),
        glare=float(rng.uniform(0.1, 0.7)) if rng.random() < 0.3 else 0.0,
        moire=float(rng.uniform(0, 0.8)) if screen else 0.0,
        noise=float(rng.uniform(2, 10)),
        invert=screen and bool(rng.random() < 0.35),
        screen=screen,
        dx=float(rng.uniform(-0.15, 0.15)),
        dy=float(rng.uniform(-0.12, 0.12)),
        seed=int(rng.integers(1 << 30)),
    )
    return s, int(rng.integers(10, 61))
