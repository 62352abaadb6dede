# A catalog product as orders are made from it (a record the products repository hands the use cases).
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class LiveProduct:
    """A live product as an order is made from it (its rules are copied into the order)."""

    id: int
    sku: str
    title: str
    kind: str
    quantity: int
    rules: dict[str, Any] | None
    sale_from: float | None
    sale_until: float | None
    valid_from: float | None
    valid_until: float | None
    valid_days: int | None
