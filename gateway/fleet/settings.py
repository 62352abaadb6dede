# Fleet settings (env DEVICE_AUTH, FLEET_SILENCE_S, FLEET_CHECK_S), validated once when the gateway starts.
from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


class FleetSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

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

    def auth_wanted(self, demo: bool) -> bool:
        return self.device_auth == "true" or (self.device_auth == "auto" and not demo)
