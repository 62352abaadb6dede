# The products repository port: the catalog's reads and writes (orders are sold from live products).
from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from gateway.domain.catalog import LiveProduct


class Products(Protocol):
    def add(self, row: dict[str, Any]) -> bool:
        """Insert the product unless its SKU is taken, live or retired (then False, nothing changed)."""
        ...

    def change(self, sku: str, row: dict[str, Any]) -> bool:
        """Set the columns of `row` on the live product `sku` (False: there is none)."""
        ...

    def retire(self, sku: str) -> bool:
        """Mark the live product `sku` deleted (False: there is none)."""
        ...

    def listing(self) -> list[dict[str, Any]]:
        """Every live product, all its columns, by SKU."""
        ...

    def rule_site_ids(self, sku: str) -> list[int] | None:
        """The site ids of the live product's `rules.sites` ([] = everywhere); None: no such product."""
        ...

    def live(self, skus: Iterable[str] | None = None) -> dict[str, LiveProduct]:
        """The live products among `skus` (None: all of them), by SKU."""
        ...

    def validity(self, product_id: int) -> tuple[int | None, float | None] | None:
        """The product's `valid_days` and `valid_until`, retired or not; None: no such product."""
        ...
