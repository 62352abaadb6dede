# The reader's app: the firmware's App (hx/app.py) with the Linux link (paho) and keyboard-wedge scanners.
from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from hx.app import App

from reader.link import PahoLink

RETRY_S = 2.0  # a scanner that is missing or was unplugged is looked for again this often


class ReaderApp(App):  # type: ignore[misc]
    """hx.app.App unchanged — queues, outbox, UI, verdicts, relay and health — with two board-specific
    parts: the MQTT client is paho (reader/link.py, built from the client App made, same settings) and
    the scanner task also reads keyboard-wedge scanners (each line goes to App.on_line, as a UART
    line does). A USB scanner unplugged (or not plugged in yet) is waited for, not a task crash: the
    app's crash rule would otherwise restart the whole reader for a cable."""

    def __init__(self, board: Any, cfg: dict[str, Any], boot: int, iid: str) -> None:
        super().__init__(board, cfg, boot, iid)
        self.mqtt: PahoLink = PahoLink(self.mqtt)

    async def t_scanner(self) -> None:
        parts = [self._retrying("hid", functools.partial(self._wedge, w)) for w in self.board.wedges()]
        if any(s.get("type") == "serial" for s in self.board.p["scanners"]):
            parts.append(self._retrying("serial", lambda: App.t_scanner(self)))
        elif parts:
            self.scanner_set.set()  # no module to set up: the link may start at once
        else:
            await App.t_scanner(self)  # no scanner at all: logged, and the task idles (as on the ESP32)
            return
        async with asyncio.TaskGroup() as tg:  # one fails for good: all stop, and the supervisor restarts
            for p in parts:
                tg.create_task(p)

    async def _retrying(self, driver: str, run: Callable[[], Awaitable[None]]) -> None:
        while True:
            try:
                await run()
            except OSError as e:  # ENOENT, ENODEV, a serial port gone: the device, not the app
                self.board.event("scanner", {"driver": driver, "error": repr(e), "retry_s": RETRY_S})
            await asyncio.sleep(RETRY_S)

    async def _wedge(self, lines: Any) -> None:
        self.board.event("scanner", {"driver": "hid"})
        async for raw in lines():
            self.on_line(raw, time.ticks_ms())  # type: ignore[attr-defined]
