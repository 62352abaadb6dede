# The verifier PINs repository port: each verifier's PIN at a site, as a slow salted hash and a keyed index.
from __future__ import annotations

from typing import Protocol

from gateway.domain.pins import PinRow


class Pins(Protocol):
    def at_site(self, site_id: int, index: str | None = None) -> list[PinRow]:
        """The site's PIN rows; with `index`, only the row of that index and rows without one yet."""
        ...

    def replace(self, user: str, site_id: int, pin_hash: str, index: str) -> None:
        """The verifier's one PIN at the site (any older one goes)."""
        ...

    def upgrade(self, pin_id: int, pin_hash: str, index: str) -> None:
        """Store a PIN kept the old way (no salt of its own, or no index) anew."""
        ...
