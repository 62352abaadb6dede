# `python -m reader --dir /var/lib/hexiao-reader`: boot the Linux reader (systemd: reader/hexiao-reader.service).
from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

from reader import compat


async def boot(board: Any) -> None:
    """As hx.start.main on the ESP32: the config (or CONFIG ERROR on screen, kept up), the install id
    and boot counter (durable before any scan), then the app's tasks. Boot-loop safe mode and OTA slots
    are the ESP32's: here systemd restarts, and updates are a new checkout of this repository."""
    from hx import start, store

    from reader.app import ReaderApp

    loop = asyncio.get_running_loop()
    me = asyncio.current_task()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, me.cancel)  # type: ignore[union-attr]
    board.open_relay()  # before anything else: the line is held inactive from here on
    asyncio.create_task(board.watchdog_task())
    board.event("boot", {"board": board.name})
    cfg, err = start.read_config(board)
    if cfg is None:
        board.start({}, None, None)  # READY: the CONFIG ERROR screen is the service's steady state
        await start.config_failed(board, err)
        return
    iid, n = store.boot_ids(board.flash, board.random)
    app = ReaderApp(board, cfg, n, iid)
    await app.run(board.start(cfg, app.healthy, app.on_turned))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reader", description="The Hexiao Linux reader.")
    ap.add_argument(
        "--dir",
        default="/var/lib/hexiao-reader",
        help="state folder: config.json, ca.der, board.json, the outbox (default: %(default)s)",
    )
    args = ap.parse_args(argv)
    compat.install()
    from reader.board import Board, BoardError

    try:
        board = Board(args.dir)
    except BoardError as e:
        print(f"hexiao-reader: {e}", file=sys.stderr)
        return 2
    try:
        asyncio.run(boot(board))
    except asyncio.CancelledError:
        pass  # SIGTERM / SIGINT: a clean stop
    finally:
        board.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
