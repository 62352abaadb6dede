# The orders repository port: creating orders and looking one up by its code (the hot path has its own).
from __future__ import annotations

from typing import Any, Protocol


class Orders(Protocol):
    def taken(self, codes: list[str]) -> dict[str, str | None]:
        """Which of `codes` already name an order, each with that order's site slug (None: no site)."""
        ...

    def insert(self, rows: list[dict[str, Any]]) -> None:
        """Insert new orders (in chunks of 500 statements' worth: one round trip per chunk)."""
        ...

    def empty(self) -> bool:
        """Whether there is no order at all."""
        ...

    def find(self, code: str, short_code: str) -> dict[str, Any] | None:
        """The order whose code is `code` or whose short code is `short_code`: all its columns, and
        `site_slug` (None: no site); None when there is none."""
        ...
