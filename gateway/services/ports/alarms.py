# The device alarms repository port: open, clear and list alarms (a silent device, code guessing).
from __future__ import annotations

from typing import Any, Protocol


class Alarms(Protocol):
    def open_devices(self, kind: str | None = None) -> set[str]:
        """Devices with an open alarm (of `kind`; None: of any kind)."""
        ...

    def open(self, device: str, kind: str, now: float, last_seen: float | None) -> None: ...

    def seen(self, device: str, kind: str, now: float) -> bool:
        """Note `now` as the latest sighting on the device's open `kind` alarm; False when none is open."""
        ...

    def clear(self, devices: list[str], kind: str, now: float) -> None:
        """Clear the open `kind` alarms of `devices`."""
        ...

    def clear_stale(self, kind: str, last_seen_before: float, now: float) -> None:
        """Clear the open `kind` alarms last seen before `last_seen_before`."""
        ...

    def listing(self, include_cleared: bool, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` alarms (device, kind, opened_at, last_seen, cleared_at), newest first."""
        ...
