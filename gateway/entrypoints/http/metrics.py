# GET /metrics: the gateway seen from the inside, in Prometheus's text format (docs/metrics.md).
# A custom collector reads the service's own counters at scrape time (services/stats.py), so the hot
# path never calls into prometheus-client and one registry per app keeps test apps apart.
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.domain.roles import Person
from gateway.entrypoints.http.auth import caller
from gateway.entrypoints.runtime import Runtime
from gateway.services.devices import list_devices
from gateway.services.stats import Histogram

router = APIRouter(tags=["system"])

# The service's plain counters, exported as Prometheus counters: (attribute, metric name, help).
COUNTERS = (
    ("scans", "hexiao_scans", "Scan messages received over MQTT (well-formed or not)."),
    ("malformed", "hexiao_scans_malformed", "Scans that broke the contract (answered MALFORMED or dropped)."),
    ("dropped", "hexiao_messages_dropped", "Messages dropped unanswered (unreadable topic, sid or status)."),
    ("rate_limited", "hexiao_scans_rate_limited", "Scans refused for coming too fast from one device."),
    ("forged", "hexiao_scans_forged", "Signed codes whose signature did not match."),
    ("redeemed", "hexiao_redeemed", "Requests decided OK and committed."),
    ("batches", "hexiao_batches", "Transactions committed by the service loop (group commits)."),
    ("db_retries", "hexiao_db_retries", "Batches redone after a lost race or a database error."),
    ("internal_errors", "hexiao_internal_errors", "Requests answered INTERNAL (nothing committed)."),
    ("statuses", "hexiao_device_statuses", "Device status messages recorded."),
)


def _histogram(name: str, doc: str, h: Histogram) -> HistogramMetricFamily:
    return HistogramMetricFamily(name, doc, buckets=h.cumulative(), sum_value=h.total)


class GatewayCollector(Collector):
    """Reads the running gateway at every scrape: service counters, histograms, queue, fleet, webhooks."""

    def __init__(self, rt: Runtime, webhooks: Any = None) -> None:
        self.rt = rt
        self.webhooks = webhooks

    def collect(self) -> Iterator[Metric]:
        c = self.rt.service.counters
        m = c.measures
        for attr, name, doc in COUNTERS:
            yield CounterMetricFamily(name, doc, value=getattr(c, attr))
        verdicts = CounterMetricFamily(
            "hexiao_verdicts",
            "Verdicts answered, by channel (mqtt, http) and reason.",
            labels=["channel", "reason"],
        )
        for (channel, reason), n in sorted(m.verdicts.items()):
            verdicts.add_metric([channel, reason], n)
        yield verdicts
        yield _histogram(
            "hexiao_verdict_latency_seconds",
            "From a request's arrival at the gateway to its verdict's hand-over (gateway side only).",
            m.latency,
        )
        yield _histogram("hexiao_commit_seconds", "One batch's transaction, commit included.", m.commit)
        yield _histogram("hexiao_batch_size", "Requests answered per committed batch.", m.batch)
        yield GaugeMetricFamily(
            "hexiao_queue_depth", "Requests waiting for the service loop.", value=self.rt.service.q.qsize()
        )
        yield GaugeMetricFamily(
            "hexiao_mqtt_connected",
            "1 while the gateway's MQTT bridge is connected.",
            value=int(bool(self.rt.bridge.health().get("connected"))),
        )
        yield from self._fleet()
        yield from self._camera()
        yield from self._ota()
        yield from self._webhooks()

    def _camera(self) -> Iterator[Metric]:
        cam = self.rt.camera
        if cam is None:  # camera boards not enabled: no camera series at all, not zeros
            return
        c = cam.counters
        yield _histogram(
            "hexiao_camera_decode_seconds", "One camera frame's decode (all its ladder steps).", c.decode_s
        )
        frames = CounterMetricFamily(
            "hexiao_camera_frames", "Camera frames received, by what became of them.", labels=["outcome"]
        )
        for outcome, n in (
            ("decoded", c.decoded),
            ("hint", c.hints),
            ("unreadable", c.bad),
            ("dropped", c.dropped_old),
            ("after_code", c.after_code),
        ):
            frames.add_metric([outcome], n)
        yield frames

    def _ota(self) -> Iterator[Metric]:
        if self.rt.ota is None:
            return
        states, alarms = self.rt.ota.summary()
        gauge = GaugeMetricFamily(
            "hexiao_ota_rollouts", "Devices by the state of their current update.", labels=["state"]
        )
        for state, n in states.items():
            gauge.add_metric([state], n)
        yield gauge
        yield GaugeMetricFamily(
            "hexiao_ota_alarms",
            "Failed or rolled-back updates not yet followed by a new roll-out.",
            value=alarms,
        )
        c = self.rt.ota.counters
        yield CounterMetricFamily("hexiao_ota_chunks", "Update chunks served to devices.", value=c.chunks)
        yield CounterMetricFamily(
            "hexiao_ota_refused",
            "Chunk requests for something not rolled out to the device.",
            value=c.refused,
        )

    def _fleet(self) -> Iterator[Metric]:
        online: Counter[str] = Counter()
        outbox = GaugeMetricFamily(
            "hexiao_device_outbox",
            "Scans waiting in a device's outbox, as it last reported.",
            labels=["device"],
        )
        for d in list_devices(self.rt.db):
            if d["online"]:
                online[d["site"] or ""] += 1
            if isinstance(d["outbox"], int):
                outbox.add_metric([d["device"]], d["outbox"])
        gauge = GaugeMetricFamily("hexiao_devices_online", "Devices online, by site.", labels=["site"])
        for site, n in sorted(online.items()):
            gauge.add_metric([site], n)
        yield gauge
        yield outbox

    def _webhooks(self) -> Iterator[Metric]:
        backlog = GaugeMetricFamily(
            "hexiao_webhook_backlog",
            "Redemptions not yet delivered to an outbound receiver.",
            labels=["target"],
        )
        deliverer = getattr(self.webhooks, "deliverer", None)
        for t in deliverer.status() if deliverer is not None else []:
            backlog.add_metric([_target_label(str(t["url"]))], t["rows_behind"] or 0)
        yield backlog


def _target_label(url: str) -> str:
    # Host and port only: a receiver's path or query may carry its own token.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")


def _registry(request: Request) -> CollectorRegistry:
    state = request.app.state
    if not hasattr(state, "metrics_registry"):
        reg = CollectorRegistry(auto_describe=False)
        reg.register(GatewayCollector(state.rt, getattr(state, "webhooks", None)))
        state.metrics_registry = reg
    registry: CollectorRegistry = state.metrics_registry
    return registry


@router.get("/metrics")
def metrics(request: Request, who: Annotated[Person, Depends(caller("owner"))]) -> Response:
    """Prometheus scrape target: an owner's API token (`authorization: Bearer …` in the scrape config)."""
    return Response(generate_latest(_registry(request)), media_type=CONTENT_TYPE_LATEST)
