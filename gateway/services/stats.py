# What the service loop measures about itself (latency, batch size, commit time, verdicts by reason).
# Plain counters written by the service thread only; the HTTP edge exports them to Prometheus at scrape
# time, so the hot path pays a few integer additions and never a lock or a metrics library call.
from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field

# Seconds from a scan's arrival at the gateway to its verdict's hand-over to the broker.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
COMMIT_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


@dataclass(slots=True)
class Histogram:
    """Cumulative-bucket histogram in Prometheus's sense: counts[i] observations ≤ bounds[i]."""

    bounds: tuple[float, ...]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    n: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value
        self.n += 1

    def cumulative(self) -> list[tuple[str, int]]:
        """(upper bound, observations at or below it), ending with +Inf, as Prometheus exposes them."""
        out, running = [], 0
        for bound, count in zip([*map(str, self.bounds), "+Inf"], self.counts, strict=True):
            running += count
            out.append((bound, running))
        return out


@dataclass(slots=True)
class Measures:
    verdicts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (channel, reason) → count
    latency: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS))
    commit: Histogram = field(default_factory=lambda: Histogram(COMMIT_BUCKETS))
    batch: Histogram = field(default_factory=lambda: Histogram(BATCH_BUCKETS))
