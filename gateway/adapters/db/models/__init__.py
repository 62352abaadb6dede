# Every table of the gateway on one metadata: importing this package registers them all (what Alembic compares).
from gateway.adapters.db.models.auth import ApiToken, AuthSession, User, UserSite
from gateway.adapters.db.models.fleet import DeviceAlarm, DeviceCommand, DeviceCredential
from gateway.adapters.db.models.ledger import (
    Audit,
    Base,
    Device,
    Order,
    Product,
    Redemption,
    Site,
    VerifierPin,
)
from gateway.adapters.db.models.ota import OtaBundle, OtaFile, OtaRollout
from gateway.adapters.db.models.webhooks import WebhookCursor, WebhookEvent

__all__ = [
    "ApiToken",
    "Audit",
    "AuthSession",
    "Base",
    "Device",
    "DeviceAlarm",
    "DeviceCommand",
    "DeviceCredential",
    "Order",
    "OtaBundle",
    "OtaFile",
    "OtaRollout",
    "Product",
    "Redemption",
    "Site",
    "User",
    "UserSite",
    "VerifierPin",
    "WebhookCursor",
    "WebhookEvent",
]
