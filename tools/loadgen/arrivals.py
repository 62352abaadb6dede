# Arrival curves for the stadium scenario (pure): a piecewise-linear arrival density and time compression.
#
# Our own few lines instead of numpy/scipy: a piecewise-linear density has a closed-form inverse CDF (one
# quadratic per segment), the load generator does not otherwise need either library, and the shape stays
# readable as a table of (time, relative rate) knots.
from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass

# Fans at a stadium in the hour before kick-off (time as a fraction of the hour, relative arrival rate):
# a trickle when the gates open, most people 25–10 minutes before kick-off, the last ones running in.
STADIUM_KNOTS: tuple[tuple[float, float], ...] = (
    (0.00, 0.15),
    (0.33, 0.45),
    (0.72, 1.00),  # peak about 17 minutes before kick-off
    (0.90, 0.70),
    (1.00, 0.15),
)


@dataclass(frozen=True, slots=True)
class Curve:
    """An arrival density on [0, 1] given by (x, relative rate) knots, linear between knots, area 1."""

    xs: tuple[float, ...]
    ys: tuple[float, ...]  # normalised: the density itself
    cum: tuple[float, ...]  # the CDF at each knot

    @classmethod
    def of(cls, knots: Sequence[tuple[float, float]]) -> Curve:
        if len(knots) < 2:
            raise ValueError("a curve needs at least two knots")
        xs = tuple(float(x) for x, _ in knots)
        raw = tuple(float(y) for _, y in knots)
        if xs[0] != 0.0 or xs[-1] != 1.0 or any(b <= a for a, b in zip(xs, xs[1:], strict=False)):
            raise ValueError("knot times must rise strictly from 0 to 1")
        if any(y < 0 for y in raw) or not any(y > 0 for y in raw):
            raise ValueError("relative rates must be non-negative and not all zero")
        area = sum((raw[i] + raw[i + 1]) / 2 * (xs[i + 1] - xs[i]) for i in range(len(xs) - 1))
        ys = tuple(y / area for y in raw)
        cum = [0.0]
        for i in range(len(xs) - 1):
            cum.append(cum[-1] + (ys[i] + ys[i + 1]) / 2 * (xs[i + 1] - xs[i]))
        cum[-1] = 1.0  # absorb rounding so inverse(1.0) is exactly 1
        return cls(xs, ys, tuple(cum))

    def density(self, x: float) -> float:
        if not 0.0 <= x <= 1.0:
            return 0.0
        for i in range(len(self.xs) - 1):
            x0, x1 = self.xs[i], self.xs[i + 1]
            if x <= x1:
                return self.ys[i] + (self.ys[i + 1] - self.ys[i]) * (x - x0) / (x1 - x0)
        return self.ys[-1]

    @property
    def peak(self) -> float:
        """The highest density: peak rate / mean rate."""
        return max(self.ys)

    def inverse(self, u: float) -> float:
        """The x at which the CDF reaches u (0 ≤ u ≤ 1): solves the segment's quadratic."""
        if not 0.0 <= u <= 1.0:
            raise ValueError(f"u must be within 0..1, got {u}")
        for i in range(len(self.xs) - 1):
            if u <= self.cum[i + 1]:
                x0, w = self.xs[i], self.xs[i + 1] - self.xs[i]
                y0, slope = self.ys[i], (self.ys[i + 1] - self.ys[i]) / w
                need = u - self.cum[i]  # area to cover inside this segment: y0*d + slope*d²/2 = need
                if abs(slope) < 1e-12:
                    d = need / y0 if y0 > 0 else 0.0
                else:
                    d = (-y0 + math.sqrt(max(0.0, y0 * y0 + 2 * slope * need))) / slope
                return min(self.xs[i + 1], x0 + max(0.0, d))
        return 1.0


def arrival_times(curve: Curve, n: int, duration_s: float, seed: int | None = None) -> list[float]:
    """n arrival offsets in [0, duration_s], ascending: n independent draws from the curve (a Poisson
    process with that rate shape, conditioned on exactly n arrivals)."""
    if n < 0 or duration_s <= 0:
        raise ValueError("n must be ≥ 0 and the duration positive")
    rng = random.Random(seed)
    return sorted(curve.inverse(rng.random()) * duration_s for _ in range(n))


@dataclass(frozen=True, slots=True)
class Compression:
    """Real time played `factor` times faster: every rate × factor, every physical duration ÷ factor.

    People counts in queues are invariant under this scaling (arrivals and service both speed up by the
    same factor); only the gateway's round trip does not shrink, so the replay is pessimistic for it."""

    real_s: float
    factor: float

    def __post_init__(self) -> None:
        if self.real_s <= 0 or self.factor < 1:
            raise ValueError("real duration must be positive and the factor at least 1")

    @property
    def replay_s(self) -> float:
        return self.real_s / self.factor

    def rate(self, real_per_s: float) -> float:
        return real_per_s * self.factor

    def duration(self, real_s: float) -> float:
        return real_s / self.factor

    def to_real(self, replay_s: float) -> float:
        return replay_s * self.factor


def peak_rate(curve: Curve, n: int, duration_s: float) -> float:
    """Arrivals per second at the curve's peak when n people arrive over duration_s."""
    return n / duration_s * curve.peak
