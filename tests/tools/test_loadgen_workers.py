# The PostgreSQL workers benchmark, shrunk: 1 and 2 workers, every scan answered once, ledger agrees, no database left.
from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from rich.console import Console

from gateway.adapters.brokers.mosquitto import free_port
from tools.loadgen import workers
from tools.loadgen.__main__ import _parser, main

pytestmark = pytest.mark.slow


def _bench_databases(admin_url: str) -> list[str]:
    with psycopg.connect(admin_url, autocommit=True) as c:
        rows = c.execute("SELECT datname FROM pg_database WHERE datname LIKE 'hx\\_bench\\_%'").fetchall()
    return [str(r[0]) for r in rows]


def test_one_and_two_workers_answer_every_scan_once_and_leave_no_database(
    pg_server: str, tmp_path: Path
) -> None:
    args = _parser().parse_args(
        ["workers", "--server", pg_server, "--rate", "40", "--open-seconds", "1", "--open-devices", "4"]
        + ["--sat-devices", "4", "--sat-seconds", "1", "--warmup", "0", "--orders", "3"]
    )
    before = set(_bench_databases(pg_server))
    server = workers.PgServer(args.server)
    try:
        configs = [workers.run_config(server, n, args, Console(quiet=True)) for n in (1, 2)]
        md = workers.markdown_side_by_side(configs, server, {}, "python -m tools.loadgen workers")
    finally:
        server.close()
    assert set(_bench_databases(pg_server)) == before  # each configuration's database was dropped
    for cfg in configs:
        assert set(cfg.results) == {"open", "saturate"}
        for name, r in cfg.results.items():
            assert r.sent > 0 and r.answered == r.sent
            assert (r.lost, r.duplicates, r.strays, r.misrouted, r.bad_verdicts) == (0, 0, 0, 0, 0)
            assert r.unacked_publishes == 0
            assert r.reasons == {"OK": r.sent}
            assert r.ok == r.ledger_ok == r.ledger_rows_ok == r.sent  # units used and OK records
            assert r.cpu.seconds["gateway"] is not None  # both workers' CPU, summed
            split = cfg.split[name]
            assert len(split) == cfg.workers and sum(s or 0 for s in split) == r.sent
        if cfg.workers == 2:
            # The shared subscription spread the scans: each worker decided some of them.
            assert all((s or 0) > 0 for s in cfg.split["saturate"])
    assert workers.exit_status(configs) == 0
    assert "| run | figure | 1 worker | 2 workers |" in md
    assert "| OK verdicts = ledger redemptions | equal | equal | met |" in md


def test_an_unreachable_server_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/postgres"
    assert main(["workers", "--server", url]) == 2
    out = capsys.readouterr().out
    assert "does not answer" in out and "--server" in out


def test_a_server_beyond_this_machine_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["workers", "--server", "postgresql://postgres@192.0.2.7:5432/postgres"]) == 2
    assert "not loopback" in capsys.readouterr().out
