# Tests of the simulator's command line: bad input gets a clear error and starts nothing.
from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tools.sim.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--mode", "bogus"], "mode must be one of handheld, turnstile"),
        (["run", "--mqtt-url", "http://127.0.0.1:1884"], "MQTT URL must look like mqtt://host:port"),
        (["scan", "CODE"], "no simulator is running here"),
        (["press", "ok"], "no simulator is running here"),
    ],
)
def test_bad_input_is_a_clear_error(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "sim")], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert message in result.output
    assert not list((tmp_path / "sim").glob("dev-*/console.log"))  # no firmware was started


def test_devices_out_of_range_is_rejected(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "--devices", "0", "--out", str(tmp_path)])
    assert result.exit_code == 2
