# Model-based test: batches whose clocks disagree by a little, around the site's midnight, never pass a limit.
"""Workers' clocks differ, and a batch can commit after one stamped later than it. A hypothesis state
machine sends scans stamped up to 90 s either side of a wall clock that crosses the site's midnight,
and a small model (written from the rules, independent of the ledger's code) predicts each verdict and
counter: the day's limit counts on the latest day the counter has reached (it never goes back), the
minimum interval runs from the last use (a use stamped before it is too soon), units never pass the
quantity. Both databases.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

from gateway.domain.validity import day_key
from tests.gateway.trust_fixtures import TZ, add_order, at, ledger, order, scan

RUNS = itertools.count()
PER_DAY = 2
GAP = 60
ORDERS: dict[str, dict[str, Any]] = {
    "D": {"quantity": 9, "rules": {"per_day": PER_DAY}},
    "G": {"quantity": 9, "rules": {"min_interval_s": GAP}},
    "DG": {"quantity": 9, "rules": {"per_day": PER_DAY, "min_interval_s": GAP}},
}


@dataclass
class Model:
    quantity: int
    used: int = 0
    day: str | None = None  # the day the counter is on
    day_used: int = 0
    last: float | None = None

    def redeem(self, rules: dict[str, Any], qty: int, now: float) -> bool:
        day = max(day_key(now, TZ), self.day or "")
        today = self.day_used if self.day == day else 0
        if qty > self.quantity - self.used:
            return False
        gap = rules.get("min_interval_s")
        if gap and self.last is not None and now - self.last < gap:
            return False
        if rules.get("per_day") and today + qty > rules["per_day"]:
            return False
        self.used += qty
        self.day, self.day_used, self.last = day, today + qty, now
        return True


def machine(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> type[RuleBasedStateMachine]:
    class Skewed(RuleBasedStateMachine):
        @initialize()
        def start(self) -> None:
            # One database per test (PostgreSQL's is the test's fixture): each run its own orders.
            self.run = next(RUNS)
            self.e = ledger(kind, tmp_path, request)
            for code, fields in ORDERS.items():
                add_order(self.e, f"{code}-{self.run}", **fields)
            self.model = {c: Model(f["quantity"]) for c, f in ORDERS.items()}
            self.clock = at("2026-11-23 23:59") + 30  # scans land on both sides at once
            self.sid = 0

        @rule(
            code=st.sampled_from(list(ORDERS)),
            qty=st.integers(1, 2),
            skew=st.integers(-90, 90),
        )
        def redeem(self, code: str, qty: int, skew: int) -> None:
            now = self.clock + skew
            self.sid += 1
            v = scan(self.e, now, f"{self.run}-{self.sid}", f"{code}-{self.run}", qty=qty)
            expected = self.model[code].redeem(ORDERS[code]["rules"], qty, now)
            assert v.ok == expected, (code, qty, now, v.reason, self.model[code])
            m, o = self.model[code], order(self.e, f"{code}-{self.run}")
            assert (o.used, o.day_key, o.day_used, o.last_used_at) == (m.used, m.day, m.day_used, m.last)

        @rule(seconds=st.sampled_from([15, 40, 3600 * 24 - 60]))
        def advance(self, seconds: int) -> None:
            self.clock += seconds

        def teardown(self) -> None:
            if hasattr(self, "e"):
                self.e.dispose()

    return Skewed


@pytest.mark.parametrize("kind", ["sqlite", "pg"])
def test_skewed_clocks_around_midnight_keep_every_limit(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    run_state_machine_as_test(
        machine(kind, tmp_path, request),
        settings=settings(
            max_examples=15,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
