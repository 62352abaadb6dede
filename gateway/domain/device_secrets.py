# Device secrets: random passwords and their PBKDF2-SHA512 hashes in Mosquitto's `$7$` password-file format.
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

# Mosquitto 2's default for `mosquitto_passwd` (sha512-pbkdf2): `$7$<iterations>$<b64 salt>$<b64 hash>`,
# 12-byte salt, 64-byte derived key. Why the stock 101 iterations: the broker runs this KDF on every
# CONNECT, and our secrets are 192-bit random tokens, not human passwords, so stretching adds nothing
# against guessing while it would add latency to every reconnect storm after a WiFi outage.
ITERATIONS = 101
SALT_BYTES = 12
KEY_BYTES = 64


def new_secret() -> str:
    """A fresh device password: 32 URL-safe characters (192 random bits), safe in JSON and config files."""
    return secrets.token_urlsafe(24)


def hash_secret(secret: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The `$7$...` string Mosquitto expects after `username:` in its password file."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    key = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, iterations, KEY_BYTES)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


def verify_secret(secret: str, hashed: str) -> bool:
    """Check a password against a `$7$` hash (also ones written by `mosquitto_passwd`)."""
    parts = hashed.split("$")
    if len(parts) != 5 or parts[0] != "" or parts[1] != "7":
        return False
    try:
        iterations = int(parts[2])
        salt = base64.b64decode(parts[3], validate=True)
        want = base64.b64decode(parts[4], validate=True)
    except ValueError:
        return False
    got = hashlib.pbkdf2_hmac("sha512", secret.encode(), salt, iterations, len(want))
    return hmac.compare_digest(got, want)
