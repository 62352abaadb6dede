# The webhook signature, both ways: "sha256=" + hex HMAC-SHA256(secret, timestamp + "." + raw body).
from __future__ import annotations

import hashlib
import hmac
import math

from gateway.domain.errors import BadSignature, Stale

PREFIX = "sha256="


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return PREFIX + mac.hexdigest()


def verify(
    secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float, tolerance: float
) -> None:
    """Raise BadSignature or Stale unless the request was signed with `secret` within `tolerance` seconds.

    The signature is checked first, so a stranger learns nothing about our clock; the timestamp is part
    of the signed text, so an attacker cannot refresh an old request to replay it later.
    """
    if not signature:
        raise BadSignature("missing X-Hexiao-Signature header")
    if not timestamp:
        raise BadSignature("missing X-Hexiao-Timestamp header")
    if not hmac.compare_digest(signature.strip().lower(), sign(secret, timestamp.strip(), body)):
        raise BadSignature("the signature does not match the body and timestamp")
    try:
        ts = float(timestamp)
    except ValueError:
        ts = math.nan
    if not math.isfinite(ts):
        raise BadSignature("X-Hexiao-Timestamp must be Unix seconds")
    if abs(now - ts) > tolerance:
        raise Stale(
            f"timestamp is {int(now - ts)} s away from the gateway's clock (at most {int(tolerance)} s)",
            skew_s=int(now - ts),
        )
