# `python -m tools.emuboard`: run an emulated board until Ctrl-C; codes typed on stdin are scanned.
from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path

import typer

from tools.emuboard.board import EmuBoard

cli = typer.Typer(add_completion=False, help=__doc__)


@cli.command()
def run(
    flash: Path = typer.Option(..., help="folder that plays the board's flash (mounted as / in the VM)"),
    out: Path = typer.Option(None, help="folder for the firmware's events.log and OLED frames (HX_OUT)"),
    uart: str = typer.Option(None, help="serial device to hand to the firmware as its scanner UART"),
    scanner: bool = typer.Option(
        False, "--scanner", help="attach a virtual GM65 scanner; lines typed on stdin are scanned"
    ),
    heap: str = typer.Option("1M", help="MicroPython heap size (-X heapsize)"),
) -> None:
    """Start an emulated board. Prints one JSON line with the serial port to give to mpremote."""
    pty_scanner = None
    if scanner:
        from tools.sim.pty_scanner import PtyScanner

        pty_scanner = PtyScanner()
        uart = pty_scanner.port
    board = EmuBoard(flash, uart=uart, out=out, heap=heap).start()
    print(json.dumps({"port": board.port, "uart": uart, "flash": str(board.flash)}), flush=True)
    done = threading.Event()

    def on_term(*_: object) -> None:
        raise SystemExit(0)  # leaves the stdin loop too; `finally` stops the VM

    signal.signal(signal.SIGTERM, on_term)
    try:
        if pty_scanner is not None:
            for line in sys.stdin:
                code = line.strip()
                if code:
                    pty_scanner.present(code)
        while not done.is_set():
            time.sleep(0.5)  # a plain sleep lets SIGTERM's handler run at once
    except KeyboardInterrupt:
        pass
    finally:
        board.stop()
        if pty_scanner is not None:
            pty_scanner.close()


if __name__ == "__main__":
    cli()
