# QR codes of order codes as files (PNG and SVG) and as terminal text, for tickets, pages and the CLI.
from __future__ import annotations

from pathlib import Path

import segno


def write_qr(code: str, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    qr = segno.make_qr(code, error="m")
    png, svg = folder / f"{code}.png", folder / f"{code}.svg"
    qr.save(str(png), scale=8, border=2)
    qr.save(str(svg), scale=4, border=2)
    return png, svg


def terminal_qr(code: str) -> str:
    import io

    buf = io.StringIO()
    segno.make_qr(code, error="m").terminal(out=buf, compact=True, border=1)
    return buf.getvalue()
