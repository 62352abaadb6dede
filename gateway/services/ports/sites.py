# The sites repository port: what the use cases read and write about sites (shops, venues).
from __future__ import annotations

from typing import Any, Protocol


class Sites(Protocol):
    def ids(self) -> dict[str, int]:
        """slug → id of every site."""
        ...

    def add(self, row: dict[str, Any]) -> bool:
        """Insert the site unless its slug is taken (then False, nothing changed)."""
        ...

    def listing(self) -> list[dict[str, Any]]:
        """Every site (slug, name, timezone, auto_checkout), by slug."""
        ...
