# Fault-suite knobs: the short version runs in `make test`, HX_CHAOS=full (`make chaos`) the long one.
from __future__ import annotations

import os
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class Scale:
    full: bool
    kill_for_s: float  # how long gateways are killed every `kill_every_s` under load
    kill_every_s: float
    rate: float  # open-loop scans per second
    workers: int  # gateway processes sharing the load (2 needs the N-workers work on PostgreSQL)
    offline_scans: int  # scans queued on a device cut off from the network
    load_s: float  # load duration around one broker / PostgreSQL / disk fault


def scale() -> Scale:
    full = os.environ.get("HX_CHAOS", "") == "full"
    return Scale(
        full=full,
        kill_for_s=60 if full else 10,
        kill_every_s=5,
        rate=50 if full else 25,
        workers=int(os.environ.get("HX_CHAOS_WORKERS", "1")),
        offline_scans=500 if full else 40,
        load_s=30 if full else 8,
    )


@pytest.fixture
def chaos() -> Scale:
    return scale()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Outside `make chaos`, the chaos-only faults are deselected (pytest reports how many), not skipped."""
    if scale().full:
        return
    out = [i for i in items if i.get_closest_marker("chaos_only")]
    if out:
        config.hook.pytest_deselected(items=out)
        items[:] = [i for i in items if not i.get_closest_marker("chaos_only")]
