# The reader's app: the firmware's App (hx/app.py) with the Linux link (paho) and keyboard-wedge scanners.
from __future__ import annotations

import asyncio
import time
from typing import Any

from hx.app import App

from reader.link import PahoLink


class ReaderApp(App):  # type: ignore[misc]
    """hx.app.App unchanged — queues, outbox, UI, verdicts, relay and health — with two board-specific
    parts: the MQTT client is paho (reader/link.py, built from the client App made, same settings) and
    the scanner task also reads keyboard-wedge scanners (each line goes to App.on_line, as a UART
    line does)."""

    def __init__(self, board: Any, cfg: dict[str, Any], boot: int, iid: str) -> None:
        super().__init__(board, cfg, boot, iid)
        self.mqtt: PahoLink = PahoLink(self.mqtt)

    async def t_scanner(self) -> None:
        wedges = [self._wedge(w) for w in self.board.wedges()]
        if not wedges:
            await super().t_scanner()
            return
        parts = list(wedges)
        if any(s.get("type") == "serial" for s in self.board.p["scanners"]):
            parts.append(super().t_scanner())
        else:
            self.scanner_set.set()  # no module to set up: the link may start at once
        await asyncio.gather(*parts)

    async def _wedge(self, lines: Any) -> None:
        self.board.event("scanner", {"driver": "hid"})
        async for raw in lines():
            self.on_line(raw, time.ticks_ms())  # type: ignore[attr-defined]
