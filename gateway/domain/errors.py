# The gateway's exception family: each error has a stable machine code and an HTTP status for the edge.
from __future__ import annotations


class HexiaoError(Exception):
    """Base of every error the gateway reports to a client. `code` is stable; `message` is for people."""

    code = "ERROR"
    http_status = 400

    def __init__(self, message: str, **details: object) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ConfigError(HexiaoError):
    code = "CONFIG"
    http_status = 500


class ValidationFailed(HexiaoError):
    code = "VALIDATION"
    http_status = 422


class NotFound(HexiaoError):
    code = "NOT_FOUND"
    http_status = 404


class Conflict(HexiaoError):
    code = "CONFLICT"
    http_status = 409


class Unavailable(HexiaoError):
    code = "UNAVAILABLE"
    http_status = 503


class NotAuthenticated(HexiaoError):
    code = "UNAUTHENTICATED"
    http_status = 401


class Forbidden(HexiaoError):
    code = "FORBIDDEN"
    http_status = 403


class BadSignature(HexiaoError):
    """A signed request (an inbound webhook) whose signature does not match."""

    code = "BAD_SIGNATURE"
    http_status = 401


class Stale(HexiaoError):
    """A signed request outside the accepted time window (a replay, or a clock far off)."""

    code = "STALE"
    http_status = 401
