# Webhook settings (env WEBHOOK_SECRET, WEBHOOK_URLS, ...), validated once when the gateway starts.
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIN_SECRET = 16  # a shorter shared secret is guessable offline from one signed request


@dataclass(frozen=True, slots=True)
class Target:
    """One outbound receiver and the secret its requests are signed with."""

    url: str
    secret: str


class WebhookSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    webhook_secret: str = Field(
        default="", description="shared secret of the inbound order webhook; empty = endpoint off"
    )
    webhook_tolerance_s: float = Field(
        default=300.0, gt=0, le=3600, description="accepted clock difference of X-Hexiao-Timestamp"
    )
    webhook_urls: str = Field(
        default="",
        description=(
            "outbound receivers of redemption events, comma-separated; `URL|SECRET` signs one with its "
            "own secret, otherwise WEBHOOK_OUT_SECRET (or WEBHOOK_SECRET) is used"
        ),
    )
    webhook_out_secret: str = Field(default="", description="default secret for outbound signatures")
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
    def _check_urls(cls, v: str) -> str:
        for item in _items(v):
            url, _, secret = item.partition("|")
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"WEBHOOK_URLS: {url!r} is not an http(s) URL")
            if len(url) > 500:
                raise ValueError("WEBHOOK_URLS: a URL is longer than 500 characters")
            if secret and len(secret) < MIN_SECRET:
                raise ValueError(f"WEBHOOK_URLS: the secret of {url} needs at least {MIN_SECRET} characters")
        return v

    def targets(self) -> list[Target]:
        """The outbound receivers; raises ValueError when one has no secret to sign with."""
        default = self.webhook_out_secret or self.webhook_secret
        out: list[Target] = []
        for item in _items(self.webhook_urls):
            url, _, secret = item.partition("|")
            if not (secret or default):
                raise ValueError(f"WEBHOOK_URLS: no secret for {url}; set URL|SECRET or WEBHOOK_OUT_SECRET")
            out.append(Target(url, secret or default))
        if len({t.url for t in out}) != len(out):
            raise ValueError("WEBHOOK_URLS: the same URL is listed twice")
        return out


def _items(v: str) -> list[str]:
    return [s.strip() for s in v.split(",") if s.strip()]
