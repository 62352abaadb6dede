# Order codes: unguessable QR codes, short manual-entry codes, and optional HMAC-signed codes.
from __future__ import annotations

import hashlib
import hmac
import re
import secrets

# 32 symbols without look-alikes (no 0/O, 1/I): codes are read aloud and typed from paper in sunlight.
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
RANDOM_SYMBOLS = 20  # 20 x 5 bits = 100 bits of randomness
SIG_SYMBOLS = 8  # 40 bits of HMAC: forging one code takes ~10^12 tries, each refused before the DB
SHORT_SYMBOLS = 10  # 50 bits; manual entry is also rate-limited
SIGNED_RE = re.compile(rf"^HX-([{ALPHABET}]{{{RANDOM_SYMBOLS}}})-([{ALPHABET}]{{{SIG_SYMBOLS}}})$")


def _symbols(n: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(n))


def _sig(body: str, key: bytes) -> str:
    digest = hmac.new(key, body.encode(), hashlib.sha256).digest()
    value = int.from_bytes(digest[:8], "big")
    return "".join(ALPHABET[(value >> (5 * i)) & 31] for i in range(SIG_SYMBOLS))


def new_code(key: bytes | None = None) -> str:
    """`HX-<20 random>` or, with a signing key, `HX-<20 random>-<8 signature>`."""
    body = _symbols(RANDOM_SYMBOLS)
    return f"HX-{body}-{_sig(body, key)}" if key else f"HX-{body}"


def new_short_code() -> str:
    return _symbols(SHORT_SYMBOLS)


def format_short(short: str) -> str:
    return f"{short[:5]}-{short[5:]}"


def normalize_short(text: str) -> str:
    return text.replace("-", "").replace(" ", "").upper()


def forged(code: str, key: bytes | None, require_signed: bool) -> bool:
    """True when a code claims to be ours but its signature is wrong (checked before any DB lookup).

    Codes of other shapes (imported third-party codes, short codes) are not ours to judge here;
    with `require_signed`, unsigned `HX-` codes count as forged too.
    """
    if not key or not code.startswith("HX-"):
        return False
    m = SIGNED_RE.match(code)
    if m is None:
        return require_signed
    return not hmac.compare_digest(m.group(2), _sig(m.group(1), key))
