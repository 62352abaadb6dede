# The gateway's fleet API as the provisioning tool uses it (register, broker address, device state, commands).
from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx

from tools.provision.errors import GatewayError


class Gateway:
    def __init__(self, url: str, token: str | None, timeout: float = 15.0, ca: Path | None = None) -> None:
        self.url = url.rstrip("/")
        headers = {"authorization": f"Bearer {token}"} if token else {}
        # An https:// gateway serves a certificate from its own CA: check it against that CA file.
        verify: Any = ssl.create_default_context(cafile=str(ca)) if ca else True
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, verify=verify)

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            r = self.http.request(method, path, **kw)
        except httpx.HTTPError as err:
            raise GatewayError(
                f"cannot reach the gateway at {self.url} ({type(err).__name__})",
                "is it running (make run)? is --gateway (or HX_GATEWAY) right?",
            ) from err
        if r.status_code == 401:
            raise GatewayError(
                "the gateway needs an API token", "create one in the console and pass --token or set HX_TOKEN"
            )
        if r.status_code == 403:
            raise GatewayError(
                "this API token may not manage devices here", "use a manager's or owner's token"
            )
        if r.status_code >= 400:
            try:
                body = r.json()["error"]
                msg = f"{body['message']} ({body['code']})"
            except (ValueError, KeyError, TypeError):
                msg = f"HTTP {r.status_code}"
            raise GatewayError(f"the gateway refused: {msg}")
        return r.json()

    def broker(self) -> dict[str, Any]:
        out: dict[str, Any] = self._call("GET", "/api/fleet/broker")
        return out

    def provision(self, device: str, site: str, gate: str, mode: str, board: str) -> dict[str, Any]:
        body = {"site": site, "gate": gate, "mode": mode, "board": board}
        out: dict[str, Any] = self._call("POST", f"/api/fleet/devices/{device}/provision", json=body)
        return out

    def device(self, device: str) -> dict[str, Any] | None:
        try:
            out: dict[str, Any] = self._call("GET", f"/api/fleet/devices/{device}")
        except GatewayError as err:
            if "NOT_FOUND" in err.message:
                return None
            raise
        return out

    def command(self, device: str, cmd: str, args: dict[str, Any] | None = None) -> None:
        self._call("POST", f"/api/fleet/devices/{device}/commands", json={"cmd": cmd, "args": args or {}})
