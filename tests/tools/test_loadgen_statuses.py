# The status CPU measurement runs end to end on a small load and leaves every status acknowledged.
from __future__ import annotations

from pathlib import Path

import pytest

from tools.loadgen.statuses import main, run


def test_statuses_measurement_small(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    per, wall = run(60, 7, registered=False, workdir=tmp_path)  # returns only once all 60 are acknowledged
    assert per > 0 and wall > 0
    assert main(["--statuses", "40", "--devices", "4"]) == 0
    assert "40 statuses of 4 registered devices" in capsys.readouterr().out
