# Hooks the fleet into the gateway's start-up: decide on device auth, write broker files, build the Fleet.
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine

from gateway.fleet.manager import Fleet, Publish
from gateway.fleet.security import Credentials, DeviceAuth, make_auth
from gateway.fleet.settings import FleetSettings
from gateway.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class FleetSetup:
    settings: FleetSettings
    auth: DeviceAuth | None
    credentials: Credentials = field(init=False)


def prepare(settings: Settings, engine: Engine, managed_broker: bool) -> FleetSetup:
    """Before the broker starts: per-device auth applies only to a broker the gateway runs itself
    (Mosquitto, or the amqtt demo broker with the same rules as plugins).

    Why not on other brokers: an external broker's users and ACLs belong to its operator (the files are
    still written when DEVICE_AUTH=true, for that broker to use).
    """
    fs = FleetSettings()
    auth: DeviceAuth | None = None
    if managed_broker and fs.auth_wanted(settings.demo):
        auth = make_auth(settings.var_dir, settings.mqtt_client_id)
    elif settings.mqtt_url and fs.device_auth == "true":
        auth = make_auth(settings.var_dir, settings.mqtt_client_id, settings.mqtt_password, enforced=False)
        log.warning(
            "DEVICE_AUTH=true with an external broker: keeping %s and %s up to date for it; "
            "the gateway cannot reload that broker",
            auth.password_file,
            auth.acl_file,
        )
    setup = FleetSetup(fs, auth)
    setup.credentials = Credentials(engine, auth)
    setup.credentials.sync()  # files exist before the broker reads them
    return setup


def mqtt_login(setup: FleetSetup, settings: Settings) -> tuple[str, str]:
    """The gateway's own MQTT username and password."""
    if setup.auth is not None and setup.auth.enforced:
        return setup.auth.gateway_user, setup.auth.gateway_secret
    return settings.mqtt_username, settings.mqtt_password


def build_fleet(
    setup: FleetSetup,
    settings: Settings,
    engine: Engine,
    publish: Publish,
    mqtt_url: str,
    reload: Callable[[], None] | None,
    forget_places: Callable[[], None],
) -> Fleet:
    if setup.auth is not None and setup.auth.enforced:
        setup.credentials.reload = reload
    parts = urlsplit(mqtt_url)
    host: str | None = parts.hostname
    if not settings.mqtt_url and settings.broker_bind in ("0.0.0.0", "", "::"):
        host = None  # listening everywhere: the provisioning tool picks the address devices can reach
    broker: dict[str, Any] = {
        "host": host,
        "port": parts.port or 1883,
        "device_auth": setup.auth is not None and setup.auth.enforced,
    }
    if setup.auth is not None and setup.auth.enforced:
        log.info(
            "per-device MQTT logins enforced (password and ACL files in %s)", setup.auth.password_file.parent
        )
    else:
        log.info(
            "per-device MQTT logins off (DEVICE_AUTH=%s, DEMO=%s)", setup.settings.device_auth, settings.demo
        )
    fleet = Fleet(engine, publish, setup.credentials, setup.settings, broker, forget_places)
    fleet.start()
    return fleet
