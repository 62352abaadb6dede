# Wires the gateway together from validated settings: database, broker, MQTT bridge, service loop.
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from gateway.broker import Mosquitto, find_mosquitto
from gateway.db.engine import make_engine, migrate
from gateway.demo import is_empty, load_demo
from gateway.demo_broker import DemoBroker
from gateway.fleet.manager import Fleet
from gateway.fleet.security import DeviceAuth
from gateway.fleet.wiring import build_fleet, mqtt_login, prepare
from gateway.mqtt_bridge import MqttBridge
from gateway.service import RedemptionService
from gateway.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    service: RedemptionService
    bridge: MqttBridge
    broker: Mosquitto | DemoBroker | None = None
    demo_codes: list[str] = field(default_factory=list)
    broker_kind: str = "external"
    fleet: Fleet | None = None

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://{self.bridge.host}:{self.bridge.port}"

    def health(self) -> dict[str, Any]:
        db = "ok"
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as err:  # reported, not raised: health must always answer
            db = f"error: {type(err).__name__}"
        mqtt = self.bridge.health()
        mqtt["broker_kind"] = self.broker_kind
        c = self.service.counters
        mqtt.update(
            scans=c.scans,
            verdicts=c.verdicts,
            malformed=c.malformed,
            dropped=c.dropped,
            rate_limited=c.rate_limited,
            statuses=c.statuses,
        )
        service = {
            "redeemed": c.redeemed,
            "batches": c.batches,
            "max_batch": c.max_batch,
            "db_retries": c.db_retries,
            "internal_errors": c.internal_errors,
            "queued": self.service.q.qsize(),
        }
        return {"ok": db == "ok" and mqtt["connected"], "db": db, "mqtt": mqtt, "service": service}

    def stop(self) -> None:
        if self.fleet is not None:
            self.fleet.stop()
        self.bridge.stop()
        self.service.stop()
        if self.broker is not None:
            self.broker.stop()
        self.engine.dispose()


def start_broker(settings: Settings, auth: DeviceAuth | None = None) -> tuple[Mosquitto | DemoBroker, str]:
    """Our own Mosquitto when installed; otherwise amqtt in-process, with a warning."""
    workdir = settings.var_dir / "mosquitto"
    if find_mosquitto() is not None:
        broker = Mosquitto(
            workdir=workdir,
            port=settings.broker_port,
            bind=settings.broker_bind,
            password_file=auth.password_file if auth is not None else None,
            acl_file=auth.acl_file if auth is not None else None,
        )
        broker.start()
        return broker, "mosquitto"
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
    return demo, "demo (in-process)"


def build(settings: Settings) -> Runtime:
    """Start everything; the caller owns stop(). Nothing is built at import time."""
    Path(settings.var_dir).mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.db_url)
    migrate(engine)
    demo_codes: list[str] = []
    if settings.demo and is_empty(engine):
        demo_codes = load_demo(engine, settings.timezone)
    broker: Mosquitto | DemoBroker | None = None
    kind = "external"
    url = settings.mqtt_url
    fleet_setup = prepare(settings, engine, managed_broker=not url)
    if not url:
        broker, kind = start_broker(settings, fleet_setup.auth)
        url = broker.url
    holder: dict[str, MqttBridge] = {}

    def publish(topic: str, payload: str) -> None:
        holder["bridge"].publish(topic, payload)

    service = RedemptionService(
        engine,
        publish,
        auto_register_site=settings.auto_register_site,
        default_tz=settings.timezone,
        batch_max=settings.batch_max,
        rate_limit_per_s=settings.rate_limit_per_s,
        signing_key=settings.key,
        require_signed=settings.require_signed,
        annul_window_s=settings.annul_window_s,
    )
    mqtt_user, mqtt_password = mqtt_login(fleet_setup, settings)
    bridge = MqttBridge(url, service.submit_mqtt, settings.mqtt_client_id, mqtt_user, mqtt_password)
    holder["bridge"] = bridge
    service.start()
    bridge.start()
    rt = Runtime(settings, engine, service, bridge, broker, demo_codes, kind)
    reload = broker.reload if broker is not None else None
    rt.fleet = build_fleet(fleet_setup, settings, engine, bridge.publish, url, reload, service.forget_places)
    return rt
