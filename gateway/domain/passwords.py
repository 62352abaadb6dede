# Password hashing with the standard library's scrypt: memory-hard, salted, no extra dependency.
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# n=2**14, r=8 costs 16 MiB and ~50 ms per check on a small box: slow for a password guesser, quick
# enough for a person signing in. Parameters are stored with each hash so they can be raised later.
_N, _R, _P = 2**14, 8, 1
_MAXMEM = 64 * 1024 * 1024


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, maxmem=_MAXMEM, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=_MAXMEM,
            dklen=len(want),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


# Checked when the name is unknown, so that a wrong name costs as much time as a wrong password.
_DUMMY = hash_password(secrets.token_hex(8))


def burn_time(password: str) -> None:
    verify_password(password, _DUMMY)
