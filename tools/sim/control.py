"""The control channel of a running simulator: JSON lines over a unix socket (``<out>/control.sock``).

``python -m tools.sim scan --device dev-1 CODE`` connects here, so codes can be typed from any
terminal while ``python -m tools.sim run`` owns the firmware processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import socketserver
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

Handler = Callable[[dict[str, Any]], dict[str, Any]]
MAX_REQUEST = 64 * 1024


class ControlError(Exception):
    """The control channel could not be reached or answered with an error."""


def _short(path: Path) -> str:
    # AF_UNIX paths are limited to ~107 bytes: fall back to a relative path when the absolute one is long.
    full = str(path.resolve())
    if len(full) < 100:
        return full
    return os.path.relpath(full)


class ControlServer:
    """Serves requests on a unix socket in a background thread; ``handler`` runs one request."""

    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self.handler = handler
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        outer = self

        class _Req(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline(MAX_REQUEST)
                try:
                    req = json.loads(line)
                    if not isinstance(req, dict):
                        raise ValueError("request must be a JSON object")
                    resp = outer.handler(req)
                except Exception as exc:  # noqa: BLE001 - every failure becomes an error reply
                    resp = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
                self.wfile.write(json.dumps(resp).encode() + b"\n")

        class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self._server = _Server(_short(path), _Req)
        self._thread = threading.Thread(target=self._server.serve_forever, name="sim-control", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def request(path: Path, payload: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
    """Send one request to a running simulator and return its reply."""
    if not path.exists():
        raise ControlError(
            f"no simulator is running here ({path} not found); start one with: python -m tools.sim run"
        )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(_short(path))
            sock.sendall(json.dumps(payload).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            raise ControlError(f"simulator at {path} did not answer: {exc}") from exc
    try:
        resp = json.loads(data)
    except ValueError as exc:
        raise ControlError(f"simulator sent a bad reply: {data[:200]!r}") from exc
    if not isinstance(resp, dict):
        raise ControlError("simulator sent a bad reply")
    return resp
