# The orders repository port: creating orders, looking them up, paying one (the hot path has its own).
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

    def add(self, row: dict[str, Any]) -> bool:
        """Insert one order. False: a concurrent writer inserted its code or short code first
        (PostgreSQL; the transaction must then be given up)."""
        ...

    def codes_of(self, external_ref: str) -> list[str]:
        """The codes of the shop order `external_ref`'s lines, oldest first."""
        ...

    def lines(self, codes: list[str]) -> dict[str, dict[str, Any]]:
        """The `title`, `quantity` and `status` of those of `codes` that exist, by code."""
        ...

    def state(self, code: str) -> dict[str, Any] | None:
        """The order's `id`, `status`, `product_id`, `valid_until` and `version`; None: no such order."""
        ...

    def change(self, order_id: int, version: int, values: dict[str, Any]) -> bool:
        """Set `values` on the order if its version is still `version` (False: it changed meanwhile)."""
        ...

    def open_codes(self, prefix: str) -> list[str]:
        """The codes starting with `prefix` of the orders not cancelled."""
        ...
