"""OLED frames from the firmware's unix board: PBM parsing and text recognition (PNG: ``tools.sim.png``).

Text recognition uses the glyphs of MicroPython's own ``framebuf`` 8x8 font, rendered by the same VM
the firmware runs on (``font_from_vm``), so a test checks the pixels the firmware really drew.
"""

from __future__ import annotations

import functools
import json
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from tools.sim.paths import MICROPYTHON

FIRST_CHAR = 32
LAST_CHAR = 126
GLYPH = 8
RULE_CHARS = frozenset("_-")


class PbmError(ValueError):
    """The file is not a PBM image we can read."""


@dataclass(frozen=True)
class Frame:
    """A monochrome frame: ``rows[y][x]`` is 1 when the pixel is lit."""

    width: int
    height: int
    rows: tuple[bytes, ...]

    def pixel(self, x: int, y: int) -> int:
        return self.rows[y][x]

    def lit(self) -> int:
        return sum(sum(r) for r in self.rows)

    def crop(self, x: int, y: int, w: int, h: int) -> tuple[bytes, ...]:
        return tuple(bytes(self.rows[yy][x : x + w]) for yy in range(y, y + h))

    # -- text ----------------------------------------------------------------------------------
    def find_text(
        self, text: str, *, scale: int = 1, font: Font | None = None, max_errors: int = 0
    ) -> list[tuple[int, int]]:
        """Every (x, y) where ``text`` is drawn (lit on dark, or dark on lit) at ``scale``.

        ``max_errors`` allows that many differing pixels over the whole text box: a frame or rule
        drawn through the first glyph column (a boxed screen) then still reads, while a different
        text of the same length differs in far more pixels.
        """
        font = font or font_from_vm()
        stamp = font.render(text, scale)
        if not stamp or not stamp[0]:
            return []
        h, w = len(stamp), len(stamp[0])
        if h > self.height or w > self.width:
            return []
        full = (1 << w) - 1
        want = [_bits(row) for row in stamp]
        rows = self._bit_rows()
        hits: list[tuple[int, int]] = []
        for y in range(self.height - h + 1):
            for x in range(self.width - w + 1):
                shift = self.width - w - x
                for inverted in (0, full):
                    errors = 0
                    for i in range(h):
                        got = (rows[y + i] >> shift) & full
                        errors += (got ^ want[i] ^ inverted).bit_count()
                        if errors > max_errors:
                            break
                    if errors <= max_errors:
                        hits.append((x, y))
                        break
        return hits

    @functools.cached_property
    def _bit_rows_cache(self) -> tuple[int, ...]:
        return tuple(_bits(row) for row in self.rows)

    def _bit_rows(self) -> tuple[int, ...]:
        return self._bit_rows_cache

    def contains_text(
        self, text: str, *, scale: int = 1, font: Font | None = None, max_errors: int = 0
    ) -> bool:
        return bool(self.find_text(text, scale=scale, font=font, max_errors=max_errors))

    def text_lines(self, *, scale: int = 1, font: Font | None = None) -> list[str]:
        """Recognise the text rows drawn with the VM font (top to bottom); unknown cells are skipped."""
        font = font or font_from_vm()
        table = font.lookup(scale)
        cell = GLYPH * scale
        found: list[tuple[int, int, str]] = []  # (score, y, text)
        for y in range(self.height - cell + 1):
            chars: list[tuple[int, str]] = []
            x = 0
            while x <= self.width - cell:
                ch = table.get(self.crop(x, y, cell, cell))
                if ch is not None and ch != " ":
                    chars.append((x, ch))
                    x += cell
                else:
                    x += 1
            # A row of only rule-like glyphs is a drawn line (hline, the edge of a filled box), not text.
            if chars and not all(ch in RULE_CHARS for _, ch in chars):
                found.append((len(chars), y, _join(chars, cell)))
        # Keep the best row of each band of overlapping rows.
        found.sort(key=lambda t: (-t[0], t[1]))
        taken: list[tuple[int, str]] = []
        for _score, y, text in found:
            if all(abs(y - ty) >= cell for ty, _ in taken):
                taken.append((y, text))
        return [text for _, text in sorted(taken)]


def _bits(row: bytes) -> int:
    """A row of 0/1 bytes as an int, leftmost pixel in the most significant bit."""
    return int(bytes(48 + b for b in row), 2) if row else 0


def _join(chars: list[tuple[int, str]], cell: int) -> str:
    out = ""
    prev_end: int | None = None
    for x, ch in chars:
        if prev_end is not None and x - prev_end >= cell // 2:
            out += " " * max(1, round((x - prev_end) / cell))
        out += ch
        prev_end = x + cell
    return out


@dataclass(frozen=True)
class Font:
    """Glyph bitmaps: ``glyphs[ch][y]`` is 8 bytes of 0/1."""

    glyphs: dict[str, tuple[bytes, ...]]

    def render(self, text: str, scale: int = 1) -> tuple[bytes, ...]:
        rows: list[bytearray] = [bytearray() for _ in range(GLYPH * scale)]
        for ch in text:
            glyph = self.glyphs.get(ch) or self.glyphs["?"]
            for y in range(GLYPH * scale):
                src = glyph[y // scale]
                rows[y] += bytes(b for b in src for _ in range(scale))
        return tuple(bytes(r) for r in rows)

    @functools.cache  # noqa: B019 - fonts are few and live for the process
    def lookup(self, scale: int = 1) -> dict[tuple[bytes, ...], str]:
        table: dict[tuple[bytes, ...], str] = {}
        for ch in sorted(self.glyphs, reverse=True):  # let the lowest code point win on duplicates
            stamp = self.render(ch, scale)
            table[stamp] = ch
            # Inverted text (dark on lit, e.g. an OK screen) reads the same.
            table.setdefault(tuple(bytes(1 - b for b in row) for row in stamp), ch)
        return table

    def __hash__(self) -> int:
        return id(self)


_FONT_SCRIPT = """
import framebuf, json
n = %d
buf = bytearray(n * 8)
fb = framebuf.FrameBuffer(buf, n * 8, 8, framebuf.MONO_HLSB)
for i in range(n):
    fb.text(chr(%d + i), i * 8, 0, 1)
rows = []
for y in range(8):
    rows.append(''.join('1' if fb.pixel(x, y) else '0' for x in range(n * 8)))
print(json.dumps(rows))
"""


@functools.cache
def font_from_vm(micropython: str | None = None) -> Font:
    """Render ASCII 32..126 with the VM's framebuf font and return the glyphs."""
    n = LAST_CHAR - FIRST_CHAR + 1
    script = _FONT_SCRIPT % (n, FIRST_CHAR)
    result = subprocess.run(
        [micropython or str(MICROPYTHON), "-c", script],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    rows: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    glyphs: dict[str, tuple[bytes, ...]] = {}
    for i in range(n):
        glyphs[chr(FIRST_CHAR + i)] = tuple(
            bytes(1 if c == "1" else 0 for c in row[i * 8 : i * 8 + 8]) for row in rows
        )
    return Font(glyphs)


# -- PBM ------------------------------------------------------------------------------------------
def _tokens(data: bytes, count: int) -> tuple[list[bytes], int]:
    """Read ``count`` whitespace-separated header tokens (skipping # comments); return them and the offset."""
    toks: list[bytes] = []
    i = 0
    while len(toks) < count:
        while i < len(data) and data[i : i + 1].isspace():
            i += 1
        if i < len(data) and data[i : i + 1] == b"#":
            while i < len(data) and data[i : i + 1] not in (b"\n", b"\r"):
                i += 1
            continue
        start = i
        while i < len(data) and not data[i : i + 1].isspace():
            i += 1
        if start == i:
            raise PbmError("truncated PBM header")
        toks.append(data[start:i])
    return toks, i


def parse_pbm(data: bytes) -> Frame:
    """Parse a P4 (binary) or P1 (ASCII) PBM. In PBM, 1 is black: here 1 means a lit OLED pixel."""
    if data[:2] not in (b"P4", b"P1"):
        raise PbmError(f"not a PBM file (magic {data[:2]!r})")
    toks, off = _tokens(data, 3)
    try:
        width, height = int(toks[1]), int(toks[2])
    except ValueError as exc:
        raise PbmError("bad PBM size") from exc
    if not (0 < width <= 4096 and 0 < height <= 4096):
        raise PbmError("bad PBM size")
    rows: list[bytes] = []
    if toks[0] == b"P4":
        body = data[off + 1 :]
        stride = (width + 7) // 8
        if len(body) < stride * height:
            raise PbmError("truncated PBM data")
        for y in range(height):
            line = body[y * stride : (y + 1) * stride]
            rows.append(bytes((line[x >> 3] >> (7 - (x & 7))) & 1 for x in range(width)))
    else:
        bits = [b - 48 for b in data[off:] if b in (48, 49)]
        if len(bits) < width * height:
            raise PbmError("truncated PBM data")
        rows = [bytes(bits[y * width : (y + 1) * width]) for y in range(height)]
    return Frame(width, height, tuple(rows))


def read_pbm(path: Path) -> Frame:
    return parse_pbm(path.read_bytes())


def frame_from_text(lines: Iterable[tuple[int, int, str]], width: int = 128, height: int = 64) -> Frame:
    """A frame with text drawn at (x, y) with the VM font: for tests and docs."""
    font = font_from_vm()
    canvas = [bytearray(width) for _ in range(height)]
    for x, y, text in lines:
        stamp = font.render(text)
        for dy, row in enumerate(stamp):
            for dx, bit in enumerate(row):
                if bit and 0 <= x + dx < width and 0 <= y + dy < height:
                    canvas[y + dy][x + dx] = 1
    return Frame(width, height, tuple(bytes(r) for r in canvas))


def to_pbm(frame: Frame) -> bytes:
    stride = (frame.width + 7) // 8
    out = bytearray(f"P4\n{frame.width} {frame.height}\n".encode())
    for row in frame.rows:
        line = bytearray(stride)
        for x, bit in enumerate(row):
            if bit:
                line[x >> 3] |= 0x80 >> (x & 7)
        out += line
    return bytes(out)
