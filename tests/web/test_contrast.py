# WCAG AA contrast of the console's colour pairs, computed from the stylesheet itself.
from __future__ import annotations

import re
from pathlib import Path

CSS = (
    Path(__file__).resolve().parents[2] / "gateway" / "entrypoints" / "console" / "static" / "console.css"
).read_text()
VARS = dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})", CSS))


def luminance(hex_colour: str) -> float:
    def chan(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * chan(r) + 0.7152 * chan(g) + 0.0722 * chan(b)


def contrast(a: str, b: str) -> float:
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def test_text_pairs_pass_aa() -> None:
    pairs = [
        ("fg", "bg"),
        ("fg", "card"),
        ("muted", "card"),
        ("muted", "bg"),
        ("primary", "card"),
        ("primary-fg", "primary"),
        ("ok-fg", "ok-bg"),
        ("deny-fg", "deny-bg"),
        ("att-fg", "att-bg"),
    ]
    for fg, bg in pairs:
        ratio = contrast(VARS[fg], VARS[bg])
        assert ratio >= 4.5, (fg, bg, round(ratio, 2))
    assert contrast("#ffffff", "#102a43") >= 4.5  # header text
    assert contrast("#ffd166", "#102a43") >= 3.0  # current-page underline and focus ring on the header


def test_focus_ring_is_visible_against_the_page() -> None:
    assert contrast(VARS["focus"], VARS["card"]) >= 3.0  # non-text contrast (WCAG 1.4.11)
    assert contrast(VARS["focus"], VARS["bg"]) >= 3.0
    assert ":focus-visible" in CSS
