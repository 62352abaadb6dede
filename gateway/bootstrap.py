# The composition root: the only module that imports every layer and wires them from validated settings.
from __future__ import annotations

import logging
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gateway.adapters.brokers.amqtt_demo import DemoBroker
from gateway.adapters.brokers.mosquitto import Mosquitto, find_mosquitto
from gateway.adapters.brokers.mosquitto_conf import TlsListener
from gateway.adapters.brokers.run_as import RunAs, broker_identity
from gateway.adapters.brokers.tls_files import BrokerTls, ensure_broker_tls, wanted_names
from gateway.adapters.camera.worker import FrameDecoder
from gateway.adapters.db.election import Election
from gateway.adapters.db.engine import make_engine, migrate
from gateway.adapters.db.notify import Notices
from gateway.adapters.db.repositories.database import SqlDatabase
from gateway.adapters.db.repositories.ota import SqlOtaStore
from gateway.adapters.db.repositories.writer import SqlWriter
from gateway.adapters.db.single import claim_sqlite
from gateway.adapters.mqtt.acl import DeviceAuth, make_auth
from gateway.adapters.mqtt.bridge import MqttBridge
from gateway.adapters.mqtt.contract import split_topic
from gateway.adapters.mqtt.ota_wire import REQUEST_KIND, MqttOtaLink, parse_request
from gateway.adapters.mqtt.transport import MqttDeviceLink, mqtt_transport
from gateway.config import FleetSettings, Settings
from gateway.domain.errors import ConfigError
from gateway.entrypoints.cli import start_cli
from gateway.entrypoints.runtime import Runtime
from gateway.services.demo import is_empty, load_demo, retire_demo
from gateway.services.device_auth import Credentials
from gateway.services.fleet import Fleet
from gateway.services.guessing import TypedGuard
from gateway.services.local_access import ensure_local_token, ensure_ota_key, ensure_pin_key
from gateway.services.ota import OtaService
from gateway.services.redeem import RedemptionService

log = logging.getLogger(__name__)


def start_broker(
    settings: Settings, auth: DeviceAuth | None = None, run_as: RunAs | None = None
) -> tuple[Mosquitto | DemoBroker, str, BrokerTls | None]:
    """Our own Mosquitto when installed; otherwise amqtt in-process (loopback only), with a warning.

    Off loopback (BROKER_BIND=0.0.0.0): plaintext stays on 127.0.0.1 (the gateway's own bridge) and
    devices get a TLS listener with a certificate from the gateway's local CA."""
    workdir = settings.var_dir / "mosquitto"
    if find_mosquitto() is not None:
        tls: BrokerTls | None = None
        listener: TlsListener | None = None
        if settings.lan_broker:
            names = wanted_names(settings.broker_bind, settings.extra_broker_names)
            owner = run_as.owner if run_as is not None else None
            tls = ensure_broker_tls(settings.var_dir, workdir, names, datetime.now(UTC), owner)
            listener = TlsListener(
                settings.broker_tls_port, settings.broker_bind, tls.cafile, tls.certfile, tls.keyfile
            )
        broker = Mosquitto(
            workdir=workdir,
            port=settings.broker_port,
            bind="127.0.0.1" if settings.lan_broker else settings.broker_bind,
            password_file=auth.password_file if auth is not None else None,
            acl_file=auth.acl_file if auth is not None else None,
            tls=listener,
            run_as=run_as.user if run_as is not None else None,
        )
        broker.start()
        return broker, "mosquitto", tls
    if settings.lan_broker:
        raise ConfigError(
            f"BROKER_BIND={settings.broker_bind}: scanners on the LAN need Mosquitto (TLS); the in-process "
            "demo broker serves this machine only. Install it: sudo apt-get install mosquitto"
        )
    log.warning(
        "Mosquitto is not installed: starting a DEMO-ONLY in-process broker (slow; its limits: docs/provisioning.md). "
        "Install it with: sudo apt-get install mosquitto"
    )
    demo = DemoBroker(
        settings.broker_port,
        settings.broker_bind,
        password_file=auth.password_file if auth is not None else None,
        gateway_user=auth.gateway_user if auth is not None else settings.mqtt_client_id,
    )
    demo.start()
    return demo, "demo (in-process)", None


def _private_dir(var: Path) -> None:
    """VAR_DIR holds the database, keys, tokens and QR files: the gateway user's alone (0700). A
    Mosquitto that runs as its own user gets group traversal (0710) right after, from
    adapters/brokers/run_as.py, and nothing more."""
    var.mkdir(mode=0o700, parents=True, exist_ok=True)
    if stat.S_IMODE(var.stat().st_mode) & 0o077:
        var.chmod(0o700)


def build(settings: Settings) -> Runtime:
    """Start everything; the caller owns stop(). Nothing is built at import time."""
    _private_dir(Path(settings.var_dir))
    engine = make_engine(settings.db_url)
    single = claim_sqlite(settings.db_url)  # SQLite serves one process: a second one stops here
    migrate(engine)
    db = SqlDatabase(engine)
    demo_codes: list[str] = []
    if not settings.demo_codes_valid:
        retire_demo(db)  # demo codes are valid only while our broker serves this machine alone
    elif settings.demo and is_empty(db):
        demo_codes = load_demo(db, settings.timezone)
    broker: Mosquitto | DemoBroker | None = None
    tls: BrokerTls | None = None
    kind = "external"
    url = settings.mqtt_url
    run_as = broker_identity(settings.var_dir) if not url and find_mosquitto() is not None else None
    fleet_setup = prepare(settings, db, managed_broker=not url, run_as=run_as)
    if not url:
        broker, kind, tls = start_broker(settings, fleet_setup.auth, run_as)
        url = broker.url
    holder: dict[str, MqttBridge] = {}

    def publish(topic: str, payload: str | bytes) -> None:
        holder["bridge"].publish(topic, payload)

    pin_key = ensure_pin_key(settings.var_dir)
    service = RedemptionService(
        db,
        SqlWriter(engine),
        mqtt_transport(publish),
        auto_register_site=settings.auto_site,
        auto_register_per_min=settings.auto_register_per_min,
        default_tz=settings.timezone,
        batch_max=settings.batch_max,
        rate_limit_per_s=settings.rate_limit_per_s,
        signing_key=settings.key,
        require_signed=settings.require_signed,
        annul_window_s=settings.annul_window_s,
        pin_key=pin_key,
    )
    camera = make_camera(settings, service, publish)
    mqtt_user, mqtt_password = mqtt_login(fleet_setup, settings)
    ota = OtaService(SqlOtaStore(engine), MqttOtaLink(publish), ensure_ota_key(settings.var_dir))
    bridge = MqttBridge(
        url,
        route(camera, service, ota),
        settings.mqtt_client_id,
        mqtt_user,
        mqtt_password,
        worker=settings.worker_id,
        share_group=settings.mqtt_share_group,
    )
    holder["bridge"] = bridge
    service.start()
    ota.start()
    camera.start()
    bridge.start()
    rt = Runtime(settings, engine, db, service, bridge, broker, demo_codes, kind, camera=camera, ota=ota)
    rt.single = single
    election = Election(engine)
    rt.election, rt.leader = election, election.leader
    service.leader = election.leader
    notices = Notices(engine, service.forget_places_here)
    service.tell_workers = notices.tell
    rt.notices = notices
    notices.start()
    rt.local_token = ensure_local_token(settings.var_dir)
    rt.pin_key = pin_key
    rt.guard = TypedGuard(settings.typed_rate_per_s, settings.guess_limit)
    reload = broker.reload if broker is not None else None
    rt.fleet = build_fleet(fleet_setup, settings, db, bridge.publish, url, reload, service.forget_places, tls)
    rt.fleet.leader = election.leader
    return rt


def make_camera(
    settings: Settings, service: RedemptionService, publish: Callable[[str, str], None]
) -> FrameDecoder:
    """Camera frames are decoded on their own threads; a read code is submitted like a UART scan."""
    c = settings.camera
    return FrameDecoder(
        service.submit_mqtt,
        publish,
        workers=c.camera_workers,
        budget_ms=c.camera_budget_ms,
        debug=c.debug_devices(),
        debug_keep=c.camera_debug_keep,
        debug_s=c.camera_debug_s,
    )


def route(
    camera: FrameDecoder, service: RedemptionService, ota: OtaService | None = None
) -> Callable[[str, bytes, Callable[[], None]], None]:
    """What the bridge hands over: frames to the decoder (QoS 0, nothing to acknowledge), update chunk
    requests to the OTA service (a lost one is asked again), the rest to the redemption service; the
    OTA service also reads a copy of each status (a device's update progress)."""

    def on_message(topic: str, payload: bytes, ack: Callable[[], None]) -> None:
        if topic.endswith("/frame"):
            camera.submit(topic, payload)
            return
        if ota is not None and topic.endswith("/" + REQUEST_KIND):
            ack()
            parts = split_topic(topic)
            req = parse_request(payload)
            if parts is not None and req is not None:
                ota.submit_request(parts[0], req)
            return
        if ota is not None and topic.endswith("/status"):
            parts = split_topic(topic)
            if parts is not None:
                ota.submit_status(parts[0], payload)
        service.submit_mqtt(topic, payload, ack)

    return on_message


# The fleet's part of the start-up: decide on device auth, write broker files, build the Fleet.
@dataclass
class FleetSetup:
    settings: FleetSettings
    auth: DeviceAuth | None
    credentials: Credentials = field(init=False)


def prepare(
    settings: Settings, db: SqlDatabase, managed_broker: bool, run_as: RunAs | None = None
) -> FleetSetup:
    """Before the broker starts: per-device auth applies only to a broker the gateway runs itself
    (Mosquitto, or the amqtt demo broker with the same rules as plugins).

    Why not on other brokers: an external broker's users and ACLs belong to its operator (the files are
    still written when DEVICE_AUTH=true, for that broker to use).
    """
    fs = settings.fleet
    auth: DeviceAuth | None = None
    if managed_broker and fs.auth_wanted(settings.demo, settings.lan_broker):
        auth = make_auth(settings.var_dir, settings.mqtt_client_id)
        auth.owner = run_as.owner if run_as is not None else None
    elif settings.mqtt_url and fs.device_auth == "true":
        auth = make_auth(settings.var_dir, settings.mqtt_client_id, settings.mqtt_password, enforced=False)
        log.warning(
            "DEVICE_AUTH=true with an external broker: keeping %s and %s up to date for it; "
            "the gateway cannot reload that broker",
            auth.password_file,
            auth.acl_file,
        )
    setup = FleetSetup(fs, auth)
    setup.credentials = Credentials(db, auth)
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
    db: SqlDatabase,
    publish: Callable[..., None],
    mqtt_url: str,
    reload: Callable[[], None] | None,
    forget_places: Callable[[], None],
    tls: BrokerTls | None = None,
) -> Fleet:
    if setup.auth is not None and setup.auth.enforced:
        setup.credentials.reload = reload
    parts = urlsplit(mqtt_url)
    host: str | None = parts.hostname
    if settings.lan_broker:
        # Listening everywhere: the provisioning tool picks the address devices can reach.
        host = None if settings.broker_bind in ("0.0.0.0", "", "::") else settings.broker_bind
    broker: dict[str, Any] = {
        "host": host,
        "port": parts.port or 1883,
        "device_auth": setup.auth is not None and setup.auth.enforced,
    }
    if tls is not None:
        # Devices connect over TLS and pin this CA; the host must be one of `names` (the certificate's).
        broker.update(port=settings.broker_tls_port, tls=True, ca_pem=tls.ca_pem, names=list(tls.names.all()))
    if setup.auth is not None and setup.auth.enforced:
        log.info(
            "per-device MQTT logins enforced (password and ACL files in %s)", setup.auth.password_file.parent
        )
    else:
        log.info(
            "per-device MQTT logins off (DEVICE_AUTH=%s, DEMO=%s)", setup.settings.device_auth, settings.demo
        )
    fleet = Fleet(db, MqttDeviceLink(publish), setup.credentials, setup.settings, broker, forget_places)
    fleet.start()
    return fleet


def main() -> None:
    """`python -m gateway`: the command line, with `build` as the way it starts the gateway."""
    start_cli(build)
