# A verifier's stored PIN at a site, as the PIN repository hands it to sign-in (services/pins.py).
from __future__ import annotations

from typing import NamedTuple


class PinRow(NamedTuple):
    id: int
    user: str
    pin_hash: str | None  # scrypt$... (None: a row from before migration 0007, only `pin_digest`)
    pin_digest: str | None
    pin_index: str | None  # keyed look-up index (None: not signed in since migration 0008)
