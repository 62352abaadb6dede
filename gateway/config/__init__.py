# The gateway's one Settings object (core knobs + fleet, webhook and report sections), validated once at start.
from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from gateway.config.sections import FALSE as FALSE
from gateway.config.sections import TRUE as TRUE
from gateway.config.sections import CameraSettings as CameraSettings
from gateway.config.sections import FleetSettings as FleetSettings
from gateway.config.sections import ReportSettings as ReportSettings
from gateway.config.sections import Target as Target
from gateway.config.sections import WebhookSettings as WebhookSettings
from gateway.config.sections import _items, _Section
from gateway.config.sections import is_loopback as is_loopback
from gateway.domain.validity import DEFAULT_TIMEZONE, known_zone


class Settings(_Section):
    """Every knob of the gateway, read once at start (bootstrap) and handed to what needs it. Defaults give
    a working single-shop install under ./var/. A bad value in any section stops the start."""

    var_dir: Path = Field(default=Path("var"), description="where SQLite, broker data and QR images live")
    database_url: str = Field(default="", description="SQLAlchemy URL; default sqlite:///<var_dir>/hexiao.db")
    mqtt_url: str = Field(
        default="", description="external broker mqtt://[user:pass@]host:port; empty = run our own"
    )
    broker_port: int = Field(default=1884, ge=1, le=65535, description="port of the broker we start")
    broker_bind: str = Field(
        default="127.0.0.1",
        description="address our broker listens on for devices (0.0.0.0 for the LAN: TLS on BROKER_TLS_PORT)",
    )
    broker_tls_port: int = Field(
        default=8883, ge=1, le=65535, description="our broker's TLS listener for devices when not on loopback"
    )
    broker_names: str = Field(
        default="",
        description="extra DNS names or addresses for the broker's TLS certificate, comma-separated",
    )
    mqtt_client_id: str = Field(default="hexiao-gateway")
    worker_id: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9_-]{0,32}$",
        description="this worker's name among several (docs/scaling.md); empty = the one gateway process",
    )
    mqtt_share_group: str = Field(
        default="hexiao",
        pattern=r"^[A-Za-z0-9_-]{1,32}$",
        description="MQTT 5 shared subscription group the workers split the scans in ($share/<group>/...)",
    )
    mqtt_username: str = ""
    mqtt_password: str = ""
    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8000, ge=1, le=65535)
    https: bool = Field(
        default=False,
        description="serve the console and API over HTTPS, certificate from the gateway's CA (VAR_DIR/ca/ca.pem)",
    )
    demo: bool = Field(default=True, description="load demo data into an empty database")
    auto_register_site: str | None = Field(
        default=None,
        description="site for unknown devices (see AUTO_REGISTER_PER_MIN); empty = refuse them; "
        "unset: `demo` with DEMO=true, refused otherwise",
    )
    auto_register_per_min: float = Field(
        default=10.0, ge=0, description="new devices registered per minute after a first 20; 0 = unlimited"
    )
    batch_max: int = Field(default=256, ge=1, le=10000, description="most scans decided in one transaction")
    rate_limit_per_s: float = Field(
        default=20.0, ge=0, description="scans per second per device; 0 = unlimited"
    )
    typed_rate_per_s: float = Field(
        default=10.0,
        ge=0,
        description="typed redemptions and checks (REST, console) per second per caller (bursts of 4x; "
        "twice that per client address); 0 = unlimited",
    )
    guess_limit: int = Field(
        default=20,
        ge=1,
        le=10_000,
        description="unknown codes per minute from one caller or address that raise the guessing alarm "
        "and pause its codes for the rest of the minute",
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
    allowed_hosts: str = Field(
        default="",
        description=(
            "Host names the console and API answer to, comma-separated, besides localhost, this machine's "
            "name and addresses and HTTP_HOST; `*` turns the check off (blocks DNS rebinding)"
        ),
    )
    trusted_proxies: str = Field(
        default="",
        description=(
            "addresses (or CIDR ranges) of reverse proxies whose X-Forwarded-For/-Proto are believed, "
            "comma-separated; empty = none"
        ),
    )
    trust_loopback: str | None = Field(default=None, description="removed: use VAR_DIR/local-token")
    log_level: str = "INFO"

    @field_validator("trust_loopback")
    @classmethod
    def _removed(cls, v: str | None) -> None:
        if v is not None:
            raise ValueError(
                "TRUST_LOOPBACK was removed: tools on this machine send the token in VAR_DIR/local-token "
                "(Authorization: Bearer ...); unset TRUST_LOOPBACK"
            )
        return None

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, v: str) -> str:
        for item in _items(v):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"TRUSTED_PROXIES: {item!r} is not an address or CIDR range") from None
        return ",".join(_items(v))

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
    def lan_broker(self) -> bool:
        """Our own broker listens beyond this machine (TLS + per-device logins, no demo codes)."""
        return not self.mqtt_url and not is_loopback(self.broker_bind)

    @property
    def demo_codes_valid(self) -> bool:
        """Demo codes are printed in the docs: valid only while our own broker serves this machine alone.
        An external broker (MQTT_URL) may be reachable by anyone; the gateway cannot tell, so not there."""
        return not self.mqtt_url and not self.lan_broker

    @property
    def http_url(self) -> str:
        return f"{'https' if self.https else 'http'}://{self.http_host}:{self.http_port}"

    @property
    def extra_broker_names(self) -> list[str]:
        return _items(self.broker_names)

    @model_validator(mode="after")
    def _no_open_lan_broker(self) -> Settings:
        host = urlsplit(self.mqtt_url).hostname or "" if self.mqtt_url else ""
        if host and not is_loopback(host):
            raise ValueError(
                f"MQTT_URL points at {host}, a broker on the network, and the gateway speaks plaintext MQTT: "
                "logins, PINs and verdicts would cross the WiFi in clear. Run that broker on this machine "
                "(MQTT_URL=mqtt://127.0.0.1:PORT), or leave MQTT_URL empty and let the gateway run its own "
                "(BROKER_BIND=0.0.0.0 gives scanners TLS with the gateway's CA)"
            )
        if self.lan_broker and self.fleet.device_auth == "false":
            raise ValueError(
                f"BROKER_BIND={self.broker_bind} puts the broker on the network, where per-device logins are "
                "required: remove DEVICE_AUTH=false (or keep BROKER_BIND=127.0.0.1)"
            )
        if self.worker_id and self.db_url.startswith("sqlite"):
            raise ValueError(
                f"WORKER_ID={self.worker_id}: several workers need one ledger they all reach, PostgreSQL "
                "(DATABASE_URL=postgresql+psycopg://...); SQLite serves one gateway process (docs/scaling.md)"
            )
        if self.worker_id and not self.mqtt_url:
            raise ValueError(
                f"WORKER_ID={self.worker_id}: workers share one broker they do not own: start Mosquitto "
                "yourself and give every worker MQTT_URL (docs/scaling.md)"
            )
        if self.lan_broker and self.broker_tls_port == self.broker_port:
            raise ValueError("BROKER_TLS_PORT must differ from BROKER_PORT (loopback plaintext)")
        return self

    @property
    def auto_site(self) -> str:
        """Where unknown devices are registered ("" = nowhere): only in a demo unless set explicitly."""
        if self.auto_register_site is not None:
            return self.auto_register_site.strip()
        return "demo" if self.demo else ""

    @property
    def key(self) -> bytes | None:
        return self.signing_key.encode() if self.signing_key else None

    @property
    def workers(self) -> bool:
        """Several gateway processes share the load (WORKER_ID set): shared subscriptions, elections."""
        return bool(self.worker_id)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'hexiao.db'}"

    fleet: FleetSettings = Field(default_factory=FleetSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    reports: ReportSettings = Field(default_factory=ReportSettings)
    camera: CameraSettings = Field(default_factory=CameraSettings)
