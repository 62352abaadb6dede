# The sites repository port: what the use cases read and write about sites (shops, venues).
from __future__ import annotations

from typing import Any, Protocol


class Sites(Protocol):
    def ids(self) -> dict[str, int]:
        """slug → id of every site."""
        ...

    def by_slug(self, slug: str) -> tuple[int, str] | None:
        """(id, time zone) of the site `slug`."""
        ...

    def zones(self) -> dict[str, str]:
        """slug → time zone of every site (naive date-times of a site's orders are read in it)."""
        ...

    def add(self, row: dict[str, Any]) -> bool:
        """Insert the site unless its slug is taken (then False, nothing changed)."""
        ...

    def listing(self) -> list[dict[str, Any]]:
        """Every site (slug, name, timezone, auto_checkout), by slug."""
        ...
