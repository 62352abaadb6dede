# Boot sequence: read the config (or show why not), install id + boot counter, make the app; any
# fault on the way is shown and resets the board, and a loop of such boots stops in safe mode.
import asyncio
import time

import hx.ui as U
from hx import VERSION, lazy, store
from hx.app import App
from hx.render import draw
from hx.sound import play


async def config_failed(board, err):
    """No usable config: show it (screen, sound, log) and stay up so it can be fixed over USB."""
    board.event("config_error", {"error": err})
    ui = U.UI("handheld", 1000, 1000, time.ticks_ms())
    ui.failure("CONFIG ERROR", err[:16], time.ticks_ms(), 0)
    fb = board.display()
    draw(fb, ui)
    fb.show()
    await play(board.buzzer(), "error")
    while True:
        await asyncio.sleep_ms(60000)


def read_config(board):
    """Validated config, or (None, error). The validator is unloaded afterwards: it is only needed at
    boot, and its bytecode would otherwise occupy ~5 KB of heap for the device's whole uptime."""
    return lazy.run("hx.config", "checked", board.flash + "/config.json")


async def main(board):
    """Boot: config (or CONFIG ERROR, forever), boot counter. Returns the App for main.py to run, so
    that this module (boot-only code) can be unloaded before the app's long life begins.

    Any exception on the way (no /board.json, a flash error, MemoryError building the outbox index)
    is shown as BOOT FAULT and resets the board after a delay (hx.rescue.fault, which does not
    return); after store.BOOT_LIMIT boots in a row that never became stable, safe mode instead."""
    board.event("boot", {"fw": VERSION, "board": board.name})
    st = lazy.run("slots", "read", board.flash)
    if st.get("rolled_back") or st.get("trial"):
        board.event("ota", {"state": "rolled_back" if st.get("rolled_back") else "trial", "slot": st.get("active"),
                            "detail": st.get("rolled_back") or st.get("trial")})
    failed = store.boot_attempt(board.flash)
    if failed >= store.BOOT_LIMIT:
        await lazy.run("hx.rescue", "safe_mode", board, failed)
        return None
    try:
        if getattr(board, "fault", None):
            raise OSError(board.fault)
        cfg, err = read_config(board)
        if cfg is None:
            await config_failed(board, err)
            return None
        iid, boot = store.boot_ids(board.flash, board.random)
        app = App(board, cfg, boot, iid)
        rb, tr = st.get("rolled_back"), st.get("trial")  # told to the gateway in the status (hx/ota.py)
        if rb or tr:
            app.ota = {"state": "rolled_back", "ver": rb.get("ver"), "why": str(rb.get("why"))[:80]} if rb \
                else {"state": "trial", "ver": tr.get("version")}
        return app
    except Exception as e:
        await lazy.run("hx.rescue", "fault", board, e)
        return None
