# The reader's app parts: a missing USB scanner is waited for (logged), never a crash of the app.
from __future__ import annotations

import asyncio
import json
from pathlib import Path

from reader import compat


def test_a_missing_wedge_scanner_is_retried_not_a_crash(tmp_path: Path) -> None:
    compat.install()
    from hx.config import validate

    from reader.app import ReaderApp
    from reader.board import Board

    board_json = {"scanners": [{"type": "hid", "device": str(tmp_path / "no-such-event-kbd")}], "oled": None,
                  "events": str(tmp_path / "events.log")}  # fmt: skip
    (tmp_path / "board.json").write_text(json.dumps(board_json))
    board = Board(str(tmp_path))
    app = ReaderApp(board, validate({"device": "t-1"}), 1, "abcdef")

    async def run() -> None:
        task = asyncio.ensure_future(app.t_scanner())
        await asyncio.sleep(0.3)
        assert not task.done(), "the scanner task keeps waiting for its device"
        task.cancel()

    asyncio.run(run())
    events = [json.loads(x) for x in (tmp_path / "events.log").read_text().splitlines()]
    errors = [e for e in events if e["ev"] == "scanner" and "error" in e]
    assert errors and "FileNotFoundError" in errors[0]["error"] and errors[0]["driver"] == "hid"
    assert app.scanner_set.is_set(), "no module to set up: the link is not held back"
    board.close()
