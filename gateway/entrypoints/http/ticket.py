# A printable ticket page for an order: its QR code, the short manual-entry code and what it is valid for.
from __future__ import annotations

import html
import io
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import segno

from gateway.domain.decisions import money
from gateway.domain.validity import days_text, fmt_minutes


def _when(ts: float | None, tz: str) -> str:
    return datetime.fromtimestamp(ts, ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M") if ts else ""


def ticket_html(order: dict[str, Any], tz: str = "Asia/Shanghai") -> str:
    """Self-contained HTML (inline SVG QR, print CSS) — prints on A4 or a 80 mm receipt printer."""
    buf = io.BytesIO()
    segno.make_qr(order["code"], error="m").save(
        buf, kind="svg", scale=6, border=2, xmldecl=False, svgns=True
    )
    qr = buf.getvalue().decode()
    e = html.escape
    what = f"{order['quantity']} × {e(order['title'])}"
    if order.get("kind") == "value":
        what = f"{e(order['title'])} — {money(order['quantity'])}"
    lines = []
    if order.get("valid_from") or order.get("valid_until"):
        lines.append(
            f"valid {_when(order.get('valid_from'), tz)} – {_when(order.get('valid_until'), tz)}".replace(
                "valid  –", "valid until"
            )
        )
    rules = order.get("rules") or {}
    if rules.get("days"):
        lines.append("days: " + days_text(rules["days"]))
    if rules.get("hours"):
        lines.append("hours: " + "-".join(fmt_minutes(m) for m in rules["hours"]))
    if order.get("site"):
        lines.append("at: " + e(order["site"]))
    extra = "".join(f"<li>{x}</li>" for x in lines)
    short = e(order.get("short_code") or "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Ticket {e(order["code"])}</title>
<style>
 body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #111; }}
 .ticket {{ max-width: 22rem; border: 2px dashed #555; padding: 1.2rem; text-align: center; }}
 .qr svg {{ width: 16rem; height: auto; }}
 .short {{ font: 700 1.6rem ui-monospace, monospace; letter-spacing: .15em; }}
 ul {{ list-style: none; padding: 0; }}
 @media print {{ body {{ margin: 0; }} .ticket {{ border: none; }} .noprint {{ display: none; }} }}
</style></head>
<body><div class="ticket">
 <h1>{what}</h1>
 <div class="qr" role="img" aria-label="QR code for {e(order["code"])}">{qr}</div>
 <p>If the QR code can't be read, type:</p>
 <p class="short">{short}</p>
 <ul>{extra}</ul>
 <p><small>{e(order["code"])}</small></p>
</div>
<p class="noprint"><button onclick="window.print()">Print</button></p>
</body></html>"""
