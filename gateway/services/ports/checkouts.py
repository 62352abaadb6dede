# The automatic check-out's repository port: the sites that have one, and who is inside where.
from __future__ import annotations

from typing import Protocol

# (site id, its check-out time "HH:MM", its zone, the moment it last ran up to or None, its creation)
Scheduled = tuple[int, str | None, str, float | None, float]


class Checkouts(Protocol):
    def scheduled(self) -> list[Scheduled]:
        """Every site with an automatic check-out time."""
        ...

    def let_out(self, site_id: int) -> int:
        """Mark everyone inside at the site as left (a version bump per order); how many orders."""
        ...

    def ran_until(self, site_id: int, now: float) -> None:
        """Remember that the site's check-out ran up to `now` (it survives restarts)."""
        ...

    def inside(self) -> dict[str, int]:
        """Units inside per site slug (entered and not seen leaving)."""
        ...
