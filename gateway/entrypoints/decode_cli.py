# `hexiao-decode`: the gateway's own frame decoder on image files, one JSON list of decoded texts per file.
from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from typing import TextIO

from gateway.adapters.camera.decode import BadFrame, decode, gray_from_file


def texts_of(path: str) -> list[str]:
    """What the gateway would read in this image (every distinct code; [] for none)."""
    return list(decode(gray_from_file(path)).texts)


def answer(paths: Iterable[str], out: TextIO, err: TextIO) -> int:
    """One JSON list per path, flushed line by line; an unreadable file answers [] and is reported."""
    failed = 0
    for raw in paths:
        path = raw.rstrip("\r\n")
        if not path:
            continue
        try:
            texts = texts_of(path)
        except BadFrame as e:
            failed += 1
            texts = []
            print(f"hexiao-decode: {e}", file=err, flush=True)
        out.write(json.dumps(texts, ensure_ascii=False) + "\n")
        out.flush()
    return 2 if failed else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="hexiao-decode",
        description="Decode order QR codes in image files with the gateway's camera decoder.",
    )
    p.add_argument("files", nargs="*", help="image files (PNG, JPEG, PGM ...)")
    p.add_argument("--stdin", action="store_true", help="read one path per line from stdin")
    a = p.parse_args(argv)
    if a.stdin == bool(a.files):
        p.error("give image files, or --stdin (and no files)")
    return answer(sys.stdin if a.stdin else a.files, sys.stdout, sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
