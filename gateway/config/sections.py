# The Settings' sections (fleet, webhooks, camera, reports) and the helpers they share: each reads its
# own flat environment variables and is validated with the rest at start (gateway/config/__init__.py).
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class _Section(BaseSettings):
    # Flat environment names (SETTLE_DAYS, not REPORTS__SETTLE_DAYS): each section reads its own variables.
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)


# Fleet: per-device MQTT logins and inactivity alarms.
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


class FleetSettings(_Section):
    device_auth: str = Field(
        default="auto",
        description=(
            "per-device MQTT logins and ACLs on the broker the gateway starts: true, false, or auto "
            "(on unless DEMO=true, where simulators publish anonymously)"
        ),
    )
    fleet_silence_s: float = Field(
        default=180.0, gt=0, description="raise an inactivity alarm after this many silent seconds"
    )
    fleet_check_s: float = Field(default=15.0, gt=0, description="how often to look for silent devices")

    @field_validator("device_auth")
    @classmethod
    def _check_auth(cls, v: str) -> str:
        v = v.strip().lower()
        if v in TRUE:
            return "true"
        if v in FALSE:
            return "false"
        if v == "auto":
            return v
        raise ValueError("DEVICE_AUTH must be true, false or auto")

    def auth_wanted(self, demo: bool, lan: bool = False) -> bool:
        """Off loopback (`lan`) logins are always on: DEVICE_AUTH=false is refused at start for a LAN broker."""
        return self.device_auth == "true" or (self.device_auth == "auto" and (lan or not demo))


def is_loopback(host: str) -> bool:
    """`host` (an address to listen on or a name) reaches only this machine."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip()).is_loopback
    except ValueError:
        return False  # a name, the empty string or a wildcard: assume the network can reach it


# Webhooks: signed order events in, signed redemption events out.
MIN_SECRET = 16  # a shorter shared secret is guessable offline from one signed request


@dataclass(frozen=True, slots=True)
class Target:
    """One outbound receiver and the secret its requests are signed with."""

    url: str
    secret: str


class WebhookSettings(_Section):
    webhook_secret: str = Field(
        default="", description="shared secret of the inbound order webhook; empty = endpoint off"
    )
    webhook_tolerance_s: float = Field(
        default=300.0, gt=0, le=3600, description="accepted clock difference of X-Hexiao-Timestamp"
    )
    webhook_out_secret: str = Field(
        default="",
        description="default secret for outbound signatures; never the inbound WEBHOOK_SECRET",
    )
    # After both secrets: checking WEBHOOK_URLS needs them (a URL without a secret of its own uses
    # WEBHOOK_OUT_SECRET; no outbound secret may equal the inbound one).
    webhook_urls: str = Field(
        default="",
        description=(
            "outbound receivers of redemption events, comma-separated; `URL|SECRET` signs one with its "
            "own secret, otherwise WEBHOOK_OUT_SECRET is used"
        ),
    )
    webhook_denials: bool = Field(default=False, description="also send redemption.denied events")
    webhook_poll_s: float = Field(default=1.0, gt=0, le=60, description="how often to look for new events")
    webhook_retry_max_s: float = Field(
        default=300.0, gt=0, description="longest wait between two delivery attempts"
    )
    webhook_timeout_s: float = Field(default=10.0, gt=0, le=120, description="HTTP timeout per delivery")

    @field_validator("webhook_secret", "webhook_out_secret")
    @classmethod
    def _long_enough(cls, v: str) -> str:
        v = v.strip()
        if v and len(v) < MIN_SECRET:
            raise ValueError(f"a webhook secret needs at least {MIN_SECRET} characters")
        return v

    @field_validator("webhook_urls")
    @classmethod
    def _check_urls(cls, v: str, info: ValidationInfo) -> str:
        for item in _items(v):
            url, _, secret = item.partition("|")
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"WEBHOOK_URLS: {url!r} is not an http(s) URL")
            if len(url) > 500:
                raise ValueError("WEBHOOK_URLS: a URL is longer than 500 characters")
            if secret and len(secret) < MIN_SECRET:
                raise ValueError(f"WEBHOOK_URLS: the secret of {url} needs at least {MIN_SECRET} characters")
        _targets(v, info.data.get("webhook_out_secret") or "", info.data.get("webhook_secret") or "")
        return v

    def targets(self) -> list[Target]:
        """The outbound receivers (each URL with the secret its requests are signed with)."""
        return _targets(self.webhook_urls, self.webhook_out_secret, self.webhook_secret)


def _targets(urls: str, default: str, inbound: str) -> list[Target]:
    """Raises ValueError when a receiver has no secret to sign with, would be signed with the inbound
    secret (it could then forge the shop's order events), or is listed twice."""
    out: list[Target] = []
    if default and default == inbound:
        raise ValueError("WEBHOOK_OUT_SECRET must differ from WEBHOOK_SECRET (a receiver could forge orders)")
    for item in _items(urls):
        url, _, secret = item.partition("|")
        if not (secret or default):
            raise ValueError(f"WEBHOOK_URLS: no secret for {url}; set URL|SECRET or WEBHOOK_OUT_SECRET")
        if secret and secret == inbound:
            raise ValueError(f"WEBHOOK_URLS: the secret of {url} must differ from WEBHOOK_SECRET")
        out.append(Target(url, secret or default))
    if len({t.url for t in out}) != len(out):
        raise ValueError("WEBHOOK_URLS: the same URL is listed twice")
    return out


def _items(v: str) -> list[str]:
    return [s.strip() for s in v.split(",") if s.strip()]


# Camera boards: frames decoded on the gateway (docs/protocol.md, "frame").
class CameraSettings(_Section):
    camera_workers: int = Field(default=1, ge=1, le=8, description="threads decoding camera frames")
    camera_budget_ms: float = Field(
        default=22.0,
        ge=0,
        le=1000,
        description="a frame's retry ladder starts no step that would end after this",
    )
    camera_debug: str = Field(
        default="",
        description=(
            "device ids, comma-separated, whose last unread frames are kept in memory for support "
            "(CAMERA_DEBUG_KEEP frames, CAMERA_DEBUG_S seconds); empty = no frame is ever kept"
        ),
    )
    camera_debug_keep: int = Field(default=5, ge=1, le=50)
    camera_debug_s: float = Field(default=600.0, gt=0, le=86400)

    def debug_devices(self) -> frozenset[str]:
        return frozenset(d.strip() for d in self.camera_debug.split(",") if d.strip())


class ReportSettings(_Section):
    settle_days: int = Field(
        default=7, ge=0, le=3650, description="unredeemed units settle this many days after payment"
    )
