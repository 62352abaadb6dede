# The devices repository port: the registry (site, gate, mode, last status) and the commands sent.
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

# (device, online, its status document or None to keep the stored one, last seen)
Report = tuple[str, bool, dict[str, Any] | None, float]


class Devices(Protocol):
    def place(self, device: str, values: dict[str, Any], now: float) -> None:
        """Set the device's site_id, gate and mode, registering it (offline) when it is new."""
        ...

    def where(self, device: str) -> tuple[int | None, str, str | None, str | None] | None:
        """(site id, gate, the site's time zone, the verifier signed in) of a registered device."""
        ...

    def register(self, device: str, site_id: int | None, now: float) -> None:
        """Register a new device (gate = its id, handheld, offline); a concurrent registration of the
        same id is no error and leaves the caller's transaction usable."""
        ...

    def report(self, device: str, values: dict[str, Any]) -> bool:
        """Record online, last_seen (and status) of a registered device (False: not registered)."""
        ...

    def report_many(self, reports: Sequence[Report]) -> set[str]:
        """Record the reports of many devices (one each) with one batched UPDATE per shape (with and
        without a document), not one statement per device; returns the devices not registered, for
        which nothing was written."""
        ...

    def sign(self, device: str, user: str | None) -> None:
        """The verifier now signed in on the device (None: signed out)."""
        ...

    def signed_in(self, device: str) -> str | None: ...

    def site_of(self, device: str) -> tuple[bool, str | None]:
        """Whether the device is registered, and its site's slug (None: not placed)."""
        ...

    def exists(self, device: str) -> bool: ...

    def set_mode(self, device: str, mode: str) -> None: ...

    def at_site(self, site_id: int) -> list[str]:
        """The site's devices whose credential is not revoked, by id."""
        ...

    def last_seen(self) -> dict[str, float | None]:
        """device → last seen (None: never heard from) of every device whose credential is not revoked."""
        ...

    def listing(self, site: str | None = None, device: str | None = None) -> list[tuple[Any, ...]]:
        """(device, site slug, gate, mode, online, last_seen, status, board, generation, revoked_at) of
        every device (of `site`, or just `device`), by id."""
        ...

    def record_command(
        self, device: str, cmd: str, args: dict[str, Any] | None, source: str, at: float
    ) -> None: ...

    def commands(self, device: str, limit: int) -> list[dict[str, Any]]:
        """The device's last `limit` commands (cmd, args, source, sent_at), newest first."""
        ...
