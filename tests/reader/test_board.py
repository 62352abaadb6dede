# The reader's start without a usable set-up: a bad board.json is a clear error (exit 2), a missing
# config.json is the firmware's CONFIG ERROR screen, kept up with the relay open, until it is fixed.
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import wait_for
from tests.reader.process import RELAY, ROOT, TIMEOUT, ReaderProcess


def test_a_bad_board_file_is_refused_with_its_reason(tmp_path: Path) -> None:
    (tmp_path / "board.json").write_text(json.dumps({"sim": True, "relais": {"line": 17}}))
    res = subprocess.run([sys.executable, "-m", "reader", "--dir", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert res.returncode == 2 and "board.json: unknown keys relais" in res.stderr
    (tmp_path / "board.json").write_text("{")
    res = subprocess.run([sys.executable, "-m", "reader", "--dir", str(tmp_path)], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert res.returncode == 2 and "board.json: not valid JSON" in res.stderr


def test_no_config_shows_config_error_and_keeps_the_relay_open(tmp_path: Path) -> None:
    rd = ReaderProcess(tmp_path)
    rd.simulate()
    rd.start()
    try:
        ev = rd.wait_event(lambda e: e.get("ev") == "config_error", what="the config error")
        assert ev["error"].endswith("config.json: missing or unreadable")
        # hx.start draws this screen itself (no `screen` event): the driver's blank frame, then it.
        frame = wait_for(lambda: rd.frame(1) if rd.frames() > 1 else None, TIMEOUT, "the CONFIG ERROR frame")
        assert frame.contains_text("CONFIG ERROR"), frame.text_lines()
    finally:
        assert rd.stop() == 0
    assert rd.levels(RELAY) and set(rd.levels(RELAY)) == {0}
