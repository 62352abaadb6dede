# Boot faults and boot loops: show why on the OLED, reset after a delay, or stay in a safe mode.
# Boot-only like hx.start (run through hx.lazy): it takes no heap while the app runs.
import asyncio
import sys
import time

import hx.ui as U
from hx import store
from hx.render import draw
from hx.sound import play

SAFE_HOLD_MS = 600000  # safe mode waits 10 min for provisioning, then tries a normal boot again


def show(board, l1, l2):
    """One error screen on the board's OLED; never raises (the OLED may be what failed)."""
    try:
        ui = U.UI("handheld", 1000, 1000, time.ticks_ms())
        ui.failure(l1[:16], l2[:16], time.ticks_ms(), 0)
        fb = board.display()
        draw(fb, ui)
        fb.show()
    except Exception as e:
        sys.print_exception(e)


def why(err):
    """A short, screen-sized name for an exception: 'MemoryError', 'OSError 28', or its message."""
    name = type(err).__name__
    if isinstance(err, OSError) and err.args:
        return "%s %s" % (name, err.args[0])
    if err.args and isinstance(err.args[0], str):
        return err.args[0]
    return name


async def fault(board, err):
    """An exception at boot: log it, show it, sound it, then reset after board.fault_ms. The boot
    counter of failed boots (hx.store.boot_attempt) turns a loop of these into safe mode."""
    sys.print_exception(err)
    text = why(err)
    try:
        board.event("boot_fault", {"error": repr(err)})
    except Exception:
        pass
    show(board, "BOOT FAULT", text)
    try:
        await play(board.buzzer(), "error")
    except Exception:
        pass
    await asyncio.sleep_ms(board.fault_ms)
    board.reboot()


async def safe_mode(board, attempts):
    """Boot loop: no app, no watchdog, no relay; a clear screen, the REPL free for provisioning
    (`python -m tools.provision` clears the counter). After SAFE_HOLD_MS, one normal boot again."""
    board.event("safe_mode", {"failed_boots": attempts})
    show(board, "SAFE MODE", "provision me")
    await asyncio.sleep_ms(SAFE_HOLD_MS)
    store.boot_stable(board.flash)
    board.reboot()
