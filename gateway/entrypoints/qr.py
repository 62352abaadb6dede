# QR codes of order codes as files (PNG and SVG) and as terminal text, for tickets, pages and the CLI.
from __future__ import annotations

import io
import os
from pathlib import Path

import segno


def write_qr(code: str, folder: Path) -> tuple[Path, Path]:
    """Order codes are bearer credentials: the folder is the gateway user's alone (0700, so its file
    names do not list live codes to others) and each file is 0600, whatever the umask."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)
    qr = segno.make_qr(code, error="m")
    png, svg = folder / f"{code}.png", folder / f"{code}.svg"
    for path, kind, scale in ((png, "png", 8), (svg, "svg", 4)):
        buf = io.BytesIO()
        qr.save(buf, kind=kind, scale=scale, border=2)
        _write_private(path, buf.getvalue())
    return png, svg


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # O_CREAT's mode is filtered by the umask; the file may also have existed
        os.write(fd, data)
    finally:
        os.close(fd)


def terminal_qr(code: str) -> str:
    buf = io.StringIO()
    segno.make_qr(code, error="m").terminal(out=buf, compact=True, border=1)
    return buf.getvalue()
