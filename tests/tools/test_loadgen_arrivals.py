# The stadium's arrival curve and time compression (pure): area, inverse CDF, peak, scaling.
from __future__ import annotations

import pytest

from tools.loadgen.arrivals import STADIUM_KNOTS, Compression, Curve, arrival_times, peak_rate


def _area(c: Curve, steps: int = 20_000) -> float:
    return sum(c.density((i + 0.5) / steps) for i in range(steps)) / steps


def test_density_is_normalised_and_peaks_where_the_knots_say() -> None:
    c = Curve.of(STADIUM_KNOTS)
    assert _area(c) == pytest.approx(1.0, abs=1e-4)
    assert c.density(0.72) == pytest.approx(c.peak)
    assert c.density(0.72) > c.density(0.5) > c.density(0.0)
    assert c.density(1.5) == 0.0


def test_inverse_cdf_is_monotone_and_matches_the_integral() -> None:
    c = Curve.of([(0.0, 0.0), (0.5, 2.0), (1.0, 0.0)])  # a triangle: CDF(0.5) = 0.5, CDF(0.25) = 0.125
    assert c.inverse(0.0) == 0.0 and c.inverse(1.0) == 1.0
    assert c.inverse(0.5) == pytest.approx(0.5)
    assert c.inverse(0.125) == pytest.approx(0.25)
    xs = [c.inverse(u / 100) for u in range(101)]
    assert xs == sorted(xs)
    flat = Curve.of([(0.0, 1.0), (1.0, 1.0)])
    assert flat.inverse(0.3) == pytest.approx(0.3)


def test_arrivals_follow_the_curve() -> None:
    c = Curve.of(STADIUM_KNOTS)
    times = arrival_times(c, 50_000, 3600.0, seed=7)
    assert len(times) == 50_000 and times == sorted(times)
    assert times[0] >= 0.0 and times[-1] <= 3600.0
    # people per 6-minute slice: the busiest slice holds the peak, the first is far quieter
    slices = [0] * 10
    for t in times:
        slices[min(9, int(t / 360))] += 1
    assert max(range(10), key=lambda i: slices[i]) == 7  # 42–48 min, around the knot at 0.72
    assert slices[0] < slices[7] / 3
    assert arrival_times(c, 10, 60.0, seed=1) == arrival_times(c, 10, 60.0, seed=1)


def test_peak_rate_and_compression() -> None:
    c = Curve.of(STADIUM_KNOTS)
    real_peak = peak_rate(c, 50_000, 3600.0)
    assert 50_000 / 3600 < real_peak < 3 * 50_000 / 3600
    comp = Compression(3600.0, 15.0)
    assert comp.replay_s == 240.0
    assert comp.rate(real_peak) == pytest.approx(real_peak * 15)
    assert comp.duration(3.0) == pytest.approx(0.2)
    assert comp.to_real(comp.duration(42.0)) == pytest.approx(42.0)


@pytest.mark.parametrize(
    "knots",
    [
        [(0.0, 1.0)],
        [(0.1, 1.0), (1.0, 1.0)],
        [(0.0, 1.0), (0.5, 1.0), (0.4, 1.0), (1.0, 1.0)],
        [(0.0, 0.0), (1.0, 0.0)],
        [(0.0, -1.0), (1.0, 2.0)],
    ],
)
def test_bad_curves_are_refused(knots: list[tuple[float, float]]) -> None:
    with pytest.raises(ValueError):
        Curve.of(knots)


def test_bad_inputs_are_refused() -> None:
    c = Curve.of(STADIUM_KNOTS)
    with pytest.raises(ValueError):
        c.inverse(1.5)
    with pytest.raises(ValueError):
        arrival_times(c, 5, 0.0)
    with pytest.raises(ValueError):
        Compression(3600.0, 0.5)
