# The deployment-shaped loads, shrunk: a small fleet and a small stadium through a real Mosquitto and gateway.
from __future__ import annotations

import os

import pytest

from tools.loadgen.scale import main, raise_nofile
from tools.loadgen.stats import process_rss_bytes

pytestmark = pytest.mark.slow


def test_stadium_lets_everyone_in_once_and_refuses_every_rescan(capsys: pytest.CaptureFixture[str]) -> None:
    # 400 people, 10 turnstiles, 5 real minutes played 150x faster (2 s); 2 of them scan twice.
    argv = ["stadium", "--people", "400", "--turnstiles", "10", "--minutes", "5", "--factor", "150"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "scans 402, verdicts 402 (OK 400), lost 0, duplicates 0" in out
    assert "reasons ALREADY_USED=2, OK=400" in out
    assert "OK redemption records written during the run 400" in out
    assert "ledger = OK verdicts = people: yes" in out


def test_fleet_holds_its_connections_with_keepalive_and_status(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["fleet", "--devices", "150", "--scanners", "5", "--scan-rate", "20", "--seconds", "4"]
    assert main(argv + ["--keepalive", "2", "--heartbeat", "2"]) == 0
    out = capsys.readouterr().out
    assert "connections dropped 0" in out
    assert "lost 0, duplicates 0" in out
    pongs = int(out.split(" PINGRESP;")[0].rsplit(" ", 1)[1].replace(",", ""))
    assert pongs > 0
    statuses = int(
        out.split("status heartbeats published (retained, QoS 1) ")[1].split(" ")[0].replace(",", "")
    )
    assert statuses >= 150  # every device at least once within its first 2 s


def test_open_file_limit_and_rss_readings() -> None:
    soft, hard = raise_nofile(1024)
    assert soft >= min(1024, hard)
    rss = process_rss_bytes(os.getpid())
    assert rss is not None and rss > 1_000_000
    assert process_rss_bytes(2**22 + 12345) is None  # above the kernel's pid_max: no such process
