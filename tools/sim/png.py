"""OLED frames as PNG screenshots: scaled up, with a dark bezel, in the colours of common SSD1306 modules."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from tools.sim.oled import Frame

PALETTES: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    # (top 16 rows, rest): the common two-colour SSD1306 module is yellow over blue.
    "white": ((235, 242, 255), (235, 242, 255)),
    "blue": ((90, 190, 255), (90, 190, 255)),
    "yellow-blue": ((255, 214, 60), (90, 190, 255)),
}


def render_png(frame: Frame, path: Path, *, scale: int = 4, palette: str = "white", bezel: int = 14) -> Path:
    """Write the frame as a PNG scaled up ``scale``x with a dark bezel, like the module looks."""
    top, rest = PALETTES[palette]
    off = (8, 10, 14)
    w, h = frame.width * scale, frame.height * scale
    img = Image.new("RGB", (w + 2 * bezel, h + 2 * bezel), (40, 42, 48))
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle((2, 2, w + 2 * bezel - 3, h + 2 * bezel - 3), radius=bezel // 2, fill=(24, 25, 29))
    draw.rectangle((bezel, bezel, bezel + w - 1, bezel + h - 1), fill=off)
    pad = 1 if scale >= 3 else 0  # a dark gap between pixels, as on the real panel
    for y, row in enumerate(frame.rows):
        colour = top if y < 16 else rest
        for x, bit in enumerate(row):
            if bit:
                x0, y0 = bezel + x * scale, bezel + y * scale
                draw.rectangle((x0, y0, x0 + scale - 1 - pad, y0 + scale - 1 - pad), fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, optimize=True)
    return path
