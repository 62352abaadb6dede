# What a device id and a scan id may be, and the ids reserved for the gateway's own actors.
from __future__ import annotations

import re

DEVICE_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
SID_RE = re.compile(r"^[A-Za-z0-9_-]{1,24}$")
# Device ids the gateway's own actors are shown under in reports; no scanner may take them.
RESERVED_DEVICES = ("revert", "system", "gateway", "console", "api")
# The device clock (`at`) is stored, never trusted; it must still be a plain number JSON can carry.
MAX_DEVICE_TIME = 4_102_444_800  # 2100-01-01


def reserved_device(device: str) -> bool:
    """Ids no scanner may use: `web-*` (people in the console) and the gateway's own actors."""
    low = device.lower()
    return low.startswith("web-") or low in RESERVED_DEVICES
