# The running gateway as the edges see it: its parts (built by gateway.bootstrap) and their health.
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, text

from gateway.adapters.brokers.amqtt_demo import DemoBroker
from gateway.adapters.brokers.mosquitto import Mosquitto
from gateway.adapters.camera.worker import FrameDecoder
from gateway.adapters.mqtt.bridge import MqttBridge
from gateway.config import Settings
from gateway.services.fleet import Fleet
from gateway.services.guessing import TypedGuard
from gateway.services.ota import OtaService
from gateway.services.ports.database import Database
from gateway.services.redeem import RedemptionService


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    db: Database  # the services' unit of work (services/ports/database.py) on `engine`
    service: RedemptionService
    bridge: MqttBridge
    broker: Mosquitto | DemoBroker | None = None
    demo_codes: list[str] = field(default_factory=list)
    broker_kind: str = "external"
    fleet: Fleet | None = None
    local_token: str = ""  # VAR_DIR/local-token: the credential of the CLI and tools on this machine
    pin_key: bytes = b""  # VAR_DIR/pin-key: the PIN look-up index's key (services/pins.py)
    guard: TypedGuard = field(default_factory=TypedGuard)  # abuse limits of typed codes
    camera: FrameDecoder | None = None
    ota: OtaService | None = None  # over-the-air updates (services/ota.py)
    single: Any = None  # the SQLite one-process lock file (adapters/db/single.py), held while we run
    leader: Callable[[], bool] = lambda: True  # whether this worker runs the singletons (election.py)
    election: Any = None
    notices: Any = None  # other workers' cache notices (adapters/db/notify.py)

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
        out = {"ok": db == "ok" and mqtt["connected"], "db": db, "mqtt": mqtt, "service": service}
        if self.camera is not None:
            out["camera"] = self.camera.health()
        return out

    def stop(self) -> None:
        if self.fleet is not None:
            self.fleet.stop()
        self.bridge.stop()
        if self.ota is not None:
            self.ota.stop()
        if self.election is not None:
            self.election.close()
        if self.notices is not None:
            self.notices.stop()
        if self.camera is not None:
            self.camera.stop()
        self.service.stop()
        if self.broker is not None:
            self.broker.stop()
        self.engine.dispose()
        if self.single is not None:
            self.single.close()  # the next gateway on this SQLite file may start
            self.single = None
