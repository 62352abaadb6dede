# The device credentials repository port: each device's MQTT secret (its hash), generation and revocation.
from __future__ import annotations

from typing import Any, Protocol


class DeviceCredentials(Protocol):
    def current(self, device: str) -> tuple[int, str] | None:
        """(generation, board) of the device's credential; None: it never had one."""
        ...

    def add(self, device: str, secret_hash: str, board: str, now: float) -> None:
        """The device's first credential (generation 1)."""
        ...

    def replace(self, device: str, secret_hash: str, board: str, generation: int, now: float) -> None:
        """A new secret for the device, lifting any revocation."""
        ...

    def revoke(self, device: str, now: float) -> bool:
        """Revoke the device's live credential (False: none is live)."""
        ...

    def revoked_at(self, device: str) -> tuple[float | None] | None:
        """(revocation time or None,) of the device's credential; None: it has none."""
        ...

    def state(self, device: str) -> dict[str, Any] | None:
        """generation, board, issued_at and revoked_at of the device's credential."""
        ...

    def live(self) -> list[tuple[str, str]]:
        """(device, secret hash) of every credential not revoked."""
        ...
