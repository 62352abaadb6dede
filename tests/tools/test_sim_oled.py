# Tests of OLED frame handling: PBM parsing, text recognition with the VM's own font, PNG screenshots.
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from tools.sim.oled import Frame, PbmError, font_from_vm, frame_from_text, parse_pbm, to_pbm
from tools.sim.png import render_png


def test_font_comes_from_the_vm_and_has_distinct_glyphs() -> None:
    font = font_from_vm()
    assert len(font.glyphs) == 95
    assert not any(any(row) for row in font.glyphs[" "])
    assert font.glyphs["O"] != font.glyphs["0"]
    assert len(font.lookup(1)) >= 90  # nearly every printable glyph is unique


def test_text_round_trips_through_pbm() -> None:
    frame = frame_from_text([(0, 0, "OK  VIP Day Pass"), (20, 30, "4 of 5 left")])
    again = parse_pbm(to_pbm(frame))
    assert again == frame
    assert again.text_lines() == ["OK  VIP Day Pass", "4 of 5 left"]
    assert again.find_text("left") == [(20 + 7 * 8, 30)]
    assert not again.contains_text("ALREADY USED")


def test_find_text_at_odd_offsets_and_inverted() -> None:
    frame = frame_from_text([(3, 5, "READY")])
    assert frame.find_text("READY") == [(3, 5)]
    inverted = Frame(frame.width, frame.height, tuple(bytes(1 - b for b in r) for r in frame.rows))
    assert inverted.contains_text("READY")


def test_scaled_text() -> None:
    font = font_from_vm()
    stamp = font.render("OK", 2)
    rows = [bytearray(128) for _ in range(64)]
    for y, row in enumerate(stamp):
        rows[10 + y][40 : 40 + len(row)] = row
    frame = Frame(128, 64, tuple(bytes(r) for r in rows))
    assert frame.find_text("OK", scale=2) == [(40, 10)]
    assert frame.text_lines(scale=2) == ["OK"]
    assert not frame.contains_text("OK")


def test_ascii_pbm_and_comments() -> None:
    data = b"P1\n# a comment\n4 2\n1 0 0 1\n0 1 1 0\n"
    frame = parse_pbm(data)
    assert frame.rows == (b"\x01\x00\x00\x01", b"\x00\x01\x01\x00")


@pytest.mark.parametrize(
    "data",
    [b"P5\n1 1\n\x00", b"P4\n128 64\n" + b"\x00" * 10, b"P4\nx 64\n", b"P4\n0 0\n", b"P1\n2 2\n1 0\n", b""],
)
def test_bad_pbm_is_rejected(data: bytes) -> None:
    with pytest.raises(PbmError):
        parse_pbm(data)


def test_png_is_scaled_with_a_bezel(tmp_path: Path) -> None:
    frame = frame_from_text([(0, 0, "HI")])
    path = render_png(frame, tmp_path / "oled.png", scale=4, bezel=10)
    img = Image.open(path).convert("RGB")
    assert img.size == (128 * 4 + 20, 64 * 4 + 20)
    # A lit pixel of "H" (column 1, row 0 of the glyph) is bright; an unlit one is dark.
    glyph = font_from_vm().glyphs["H"]
    lit = next((x, y) for y in range(8) for x in range(8) if glyph[y][x])
    dark = next((x, y) for y in range(8) for x in range(8) if not glyph[y][x])
    assert sum(img.getpixel((10 + lit[0] * 4 + 1, 10 + lit[1] * 4 + 1))) > 600  # type: ignore[arg-type]
    assert sum(img.getpixel((10 + dark[0] * 4 + 1, 10 + dark[1] * 4 + 1))) < 100  # type: ignore[arg-type]


def test_text_lines_reads_inverted_text() -> None:
    frame = frame_from_text([(0, 30, "OK Day Pass")])
    rows = list(frame.rows)
    for y in range(12, 64):
        rows[y] = bytes(1 - b for b in rows[y])
    inverted = Frame(frame.width, frame.height, tuple(rows))
    assert inverted.text_lines() == ["OK Day Pass"]


def test_drawn_lines_are_not_read_as_text() -> None:
    frame = frame_from_text([(0, 0, "ON q0"), (0, 30, "READY")])
    rows = list(frame.rows)
    rows[10] = b"\x01" * 128  # the status bar separator
    assert Frame(128, 64, tuple(rows)).text_lines() == ["ON q0", "READY"]


def test_max_errors_reads_text_touching_a_box_but_not_other_text() -> None:
    frame = frame_from_text([(0, 30, "ALREADY USED"), (0, 42, "11:56 dev-1")])
    rows = [bytearray(r) for r in frame.rows]
    for y in range(12, 64):
        rows[y][0] = 1  # the left edge of a rect drawn through the first glyph column
    boxed = Frame(128, 64, tuple(bytes(r) for r in rows))
    assert not boxed.contains_text("ALREADY USED")
    assert boxed.find_text("ALREADY USED", max_errors=8) == [(0, 30)]
    assert boxed.contains_text("11:56 dev-1", max_errors=8)
    assert not boxed.contains_text("ALREADY_USED", max_errors=8)
    assert not boxed.contains_text("12:56 dev-1", max_errors=8)
    assert not boxed.contains_text("OK Day Pass", max_errors=8)
