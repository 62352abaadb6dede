# Gateway settings, read from the environment (and CLI flags) and validated once at start-up.
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gateway.inputs import DEFAULT_TIMEZONE, known_zone


class Settings(BaseSettings):
    """Every knob of the gateway. Defaults give a working single-shop install under ./var/."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", case_sensitive=False)

    var_dir: Path = Field(default=Path("var"), description="where SQLite, broker data and QR images live")
    database_url: str = Field(default="", description="SQLAlchemy URL; default sqlite:///<var_dir>/hexiao.db")
    mqtt_url: str = Field(
        default="", description="external broker mqtt://[user:pass@]host:port; empty = run our own"
    )
    broker_port: int = Field(default=1884, ge=1, le=65535, description="port of the broker we start")
    broker_bind: str = Field(
        default="127.0.0.1", description="address our broker listens on (0.0.0.0 for the LAN)"
    )
    mqtt_client_id: str = Field(default="hexiao-gateway")
    mqtt_username: str = ""
    mqtt_password: str = ""
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    demo: bool = Field(default=True, description="load demo data into an empty database")
    auto_register_site: str = Field(
        default="demo", description="site for unknown devices; empty = refuse them"
    )
    batch_max: int = Field(default=256, ge=1, le=10000, description="most scans decided in one transaction")
    rate_limit_per_s: float = Field(
        default=20.0, ge=0, description="scans per second per device; 0 = unlimited"
    )
    timezone: str = Field(
        default=DEFAULT_TIMEZONE,
        description="zone of new sites without one, and of naive date-times of orders without a site",
    )
    signing_key: str = Field(
        default="", description="HMAC key: new codes are signed, forged ones refused early"
    )
    require_signed: bool = Field(default=False, description="refuse unsigned HX- codes (with SIGNING_KEY)")
    annul_window_s: float = Field(
        default=120.0, ge=0, le=86400, description="how long a device may annul its scan"
    )
    trust_loopback: bool = Field(
        default=True, description="REST calls from 127.0.0.1 without credentials act as owner"
    )
    log_level: str = "INFO"

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, v: str) -> str:
        return known_zone(v)  # a typo must stop the start, not make every new site fail

    @field_validator("mqtt_url")
    @classmethod
    def _check_mqtt_url(cls, v: str) -> str:
        if v:
            parts = urlsplit(v)
            if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
                raise ValueError("MQTT_URL must look like mqtt://host:1883")
        return v

    @field_validator("database_url")
    @classmethod
    def _check_db_url(cls, v: str) -> str:
        if v and not (v.startswith("sqlite") or v.startswith("postgresql")):
            raise ValueError("DATABASE_URL must be a sqlite:/// or postgresql+psycopg:// URL")
        if v.startswith("postgresql://"):
            # Use psycopg 3, the driver we ship, when the URL does not name one.
            v = "postgresql+psycopg://" + v[len("postgresql://") :]
        return v

    @property
    def key(self) -> bytes | None:
        return self.signing_key.encode() if self.signing_key else None

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'hexiao.db'}"
