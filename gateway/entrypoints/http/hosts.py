# The Host allowlist: a page on another name (DNS rebinding) never reaches the console or the API.
from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

LOCAL_NAMES = ("localhost", "localhost.localdomain")


def host_name(header: str) -> str:
    """The name in a Host header without its port, lower-case ("[::1]:8000" -> "::1")."""
    h = header.strip().lower()
    if h.startswith("["):
        return h[1 : h.find("]")] if "]" in h else ""
    name, _, _port = h.partition(":")
    return name.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def machine_names() -> set[str]:
    """This machine's own names (its host name and the mDNS `name.local`): what people on the LAN type.
    No DNS look-up (a shop's resolver may hang); other names, an FQDN say, go in ALLOWED_HOSTS."""
    short = socket.gethostname().lower().rstrip(".")
    return {short, f"{short.split('.')[0]}.local"} if short else set()


def allowed_names(configured: str, http_host: str) -> frozenset[str] | None:
    """The names the gateway answers to, or None for any (`*`). Addresses are always fine: a rebinding
    page speaks to the gateway under the attacker's name, never under an IP literal."""
    extra = [h.strip().lower() for h in configured.split(",") if h.strip()]
    if "*" in extra:
        return None
    names = {*LOCAL_NAMES, *machine_names(), *extra}
    if http_host and not _is_ip(http_host):
        names.add(http_host.lower())
    return frozenset(names)


def host_ok(header: str, names: Iterable[str] | None) -> bool:
    """Allowed: any name with `names` None, an IP literal, a listed name, or no Host at all (an old
    HTTP/1.0 monitor; a browser always sends one, so rebinding never comes without it)."""
    if names is None:
        return True
    name = host_name(header)
    return not header.strip() or _is_ip(name) or name in names


class HostAllowlist:
    """ASGI middleware: a request whose Host is not an allowed name gets 400 in the one error shape.
    The names come from the settings of the running gateway, read once at its first request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.names: frozenset[str] | None = None
        self.ready = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self.ready:
            settings = scope["app"].state.rt.settings
            self.names = allowed_names(settings.allowed_hosts, settings.http_host)
            self.ready = True
        host = next((v.decode("latin1") for k, v in scope["headers"] if k == b"host"), "")
        if host_ok(host, self.names):
            await self.app(scope, receive, send)
            return
        body = json.dumps(
            {
                "error": {
                    "code": "BAD_HOST",
                    "message": "this gateway does not answer to that host name (set ALLOWED_HOSTS)",
                    "details": {"host": host_name(host)[:100]},
                }
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 400,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
