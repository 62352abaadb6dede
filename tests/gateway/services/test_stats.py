# The service's own histograms: Prometheus's cumulative buckets, +Inf last, sums kept.
from __future__ import annotations

from gateway.services.stats import Histogram


def test_cumulative_buckets() -> None:
    h = Histogram((0.001, 0.01, 0.1))
    for v in (0.0005, 0.001, 0.002, 0.05, 3.0):
        h.observe(v)
    assert h.cumulative() == [("0.001", 2), ("0.01", 3), ("0.1", 4), ("+Inf", 5)]
    assert h.n == 5 and abs(h.total - 3.0535) < 1e-9


def test_empty_histogram_exports_zeros() -> None:
    assert Histogram((1, 2)).cumulative() == [("1", 0), ("2", 0), ("+Inf", 0)]
