# The audit repository port: who changed what outside a plain redemption.
from __future__ import annotations

from typing import Protocol


class Audit(Protocol):
    def add(
        self,
        at: float,
        actor: str,
        action: str,
        reason: str = "",
        order_id: int | None = None,
        redemption_id: int | None = None,
        units: int = 0,
    ) -> None: ...

    def recorded(self, action: str, actor: str, reason_prefix: str) -> bool:
        """Whether an entry of `action` by `actor` has a reason starting with `reason_prefix`."""
        ...
