# The provisioning tool's errors: a stable code, a sentence for the store manager, and a hint what to do.
from __future__ import annotations


class ProvisionError(Exception):
    code = "PROVISION"

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class PortError(ProvisionError):
    code = "PORT"


class DeviceError(ProvisionError):
    code = "DEVICE"


class GatewayError(ProvisionError):
    code = "GATEWAY"


class FirmwareError(ProvisionError):
    code = "FIRMWARE"


class UsageError(ProvisionError):
    code = "USAGE"
