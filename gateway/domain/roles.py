# Roles and what each may do: one ordered ladder, so "at least manager" is a comparison, not a table.
from __future__ import annotations

from dataclasses import dataclass

ROLES = ("verifier", "supervisor", "manager", "owner")
RANK = {r: i for i, r in enumerate(ROLES)}
NAME_PATTERN = r"^[A-Za-z0-9_.@-]{1,30}$"  # the same rule as the `by` field of manual redemptions
# The audit name of the gateway's local token (CLI and tools on its own machine): no person may take it.
LOCAL_NAME = "local"
RESERVED_NAMES = frozenset({LOCAL_NAME})


@dataclass(frozen=True, slots=True)
class Person:
    """A signed-in user (by browser session or API token) and the sites they may act on."""

    id: int
    name: str
    role: str
    sites: frozenset[str]  # site slugs; ignored for owners, who act on every site
    via: str = "session"  # "session" or "token"
    csrf: str = ""

    @property
    def all_sites(self) -> bool:
        return self.role == "owner"

    def at_least(self, role: str) -> bool:
        return RANK[self.role] >= RANK[role]

    def may_site(self, slug: str | None) -> bool:
        """May act on site `slug`; None (an order valid everywhere, an unplaced device) needs all sites."""
        if self.all_sites:
            return True
        return slug is not None and slug in self.sites

    def sees_order(self, slug: str | None) -> bool:
        """May see an order of site `slug`: orders valid everywhere (None) are everyone's to look up."""
        return slug is None or self.sees_site(slug)

    def sees_site(self, slug: str | None) -> bool:
        """May see records of site `slug`; records without a site are visible to managers and up."""
        if self.all_sites:
            return True
        if slug is None:
            return self.at_least("manager")
        return slug in self.sites
