"""Garbage generators for the scanner line: what a loose wire, a wrong baud rate or a hostile QR code sends."""

from __future__ import annotations

import random

from tools.sim.gm65 import HEADER


def random_bytes(n: int, seed: int | None = None) -> bytes:
    """``n`` uniformly random bytes (includes NUL, 0x7E, CR and LF)."""
    return random.Random(seed).randbytes(n)


def baud_mismatch(n: int, seed: int | None = None) -> bytes:
    """What a 9600 line looks like read at 115200: mostly 0x00/0x80/0xF8/0xFE with framing noise."""
    rng = random.Random(seed)
    return bytes(rng.choice((0x00, 0x80, 0xF8, 0xFE, 0xE0, 0x78, 0xFF)) for _ in range(n))


def broken_frames(seed: int | None = None) -> bytes:
    """Half reply headers, truncated ``7E 00`` command frames and a bogus length: parser stress."""
    rng = random.Random(seed)
    parts = [
        b"\x02\x00\x00\x05\x01",  # reply header promising more bytes than come
        HEADER + b"\x08\xff",  # command header with an absurd length
        HEADER,
        bytes(rng.randrange(256) for _ in range(7)),
    ]
    return b"".join(parts)


def overlong_line(n: int = 2000, tail: bytes = b"\r\n") -> bytes:
    """A printable line far longer than any order code, then the tail."""
    return b"X" * n + tail


def control_chars_line(tail: bytes = b"\r\n") -> bytes:
    """A line made of control characters and invalid UTF-8 around printable text."""
    return b"\x00\x01AB\x1b[2J\xff\xfeCD\x7f" + tail


def garbage_mix(seed: int | None = None) -> bytes:
    """All of the above in one burst."""
    rng = random.Random(seed)
    return b"".join(
        (
            random_bytes(256, rng.randrange(1 << 30)),
            baud_mismatch(64, rng.randrange(1 << 30)),
            broken_frames(rng.randrange(1 << 30)),
            overlong_line(),
            control_chars_line(),
            b"\r\n\r\n\n\r",
        )
    )
