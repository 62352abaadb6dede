# A small bar chart as inline SVG (units redeemed and denials per day): no chart library, no JavaScript.
from __future__ import annotations

from html import escape
from typing import Any


def chart_svg(daily: list[dict[str, Any]], title: str) -> str:
    """A small bar chart of redeemed units (and denials) per day as inline SVG — no chart library needed."""
    w, h, pad = 640, 220, 30
    n = max(1, len(daily))
    top = max([d["units"] for d in daily] + [d["denied"] for d in daily] + [1])
    bw = (w - 2 * pad) / n
    parts = [
        f'<svg viewBox="0 0 {w} {h}" role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{pad}" y1="{h - pad}" x2="{w - pad}" y2="{h - pad}" stroke="#4a5563"/>',
        f'<text x="{pad}" y="14" font-size="12" fill="#1b1f24">{top}</text>',
    ]
    for i, d in enumerate(daily):
        x = pad + i * bw
        uh = (h - 2 * pad) * d["units"] / top
        dh = (h - 2 * pad) * d["denied"] / top
        parts.append(
            f'<rect x="{x + bw * 0.1:.1f}" y="{h - pad - uh:.1f}" width="{bw * 0.45:.1f}" height="{uh:.1f}" fill="#0b5d2a">'
            f"<title>{escape(d['k'])}: {d['units']}</title></rect>"
        )
        parts.append(
            f'<rect x="{x + bw * 0.55:.1f}" y="{h - pad - dh:.1f}" width="{bw * 0.35:.1f}" height="{dh:.1f}" fill="#9b1c1c">'
            f"<title>{escape(d['k'])}: {d['denied']} denied</title></rect>"
        )
        if n <= 14 or i % max(1, n // 10) == 0:
            parts.append(
                f'<text x="{x + bw / 2:.1f}" y="{h - 10}" font-size="11" text-anchor="middle" fill="#1b1f24">{escape(d["k"])}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)
