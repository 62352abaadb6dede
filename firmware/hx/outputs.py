# The output tasks of the app: display, buzzer, relay, and the buttons that feed the UI.
import asyncio
import time

from hx.render import draw
from hx.sound import PATTERNS, pattern_ms, play, pulse

# Each runs forever under the app's supervisor and is handed only what it uses: the board layer, the
# UI object (its public methods), its queue or event, and `apply` (the app's effect runner).


_POLL_MS = 20  # the display task looks every 20 ms whether `redraw` was set
_TICK_MS = 100  # and drives the UI's timeouts every 100 ms


async def display(board, ui, gate, link, apply, redraw):
    """Draw the UI whenever it changed, and drive its timeouts. link(now) hands the UI the link state
    (and marks it alive); `redraw` (an Event) brings the next look forward.

    A quiet tick allocates nothing: a plain sleep (no wait_for task per tick), ui.tick() returns ()
    when nothing is due, and a frame is drawn only when ui.version changed."""
    fb = board.display()
    shown = -1
    last = time.ticks_add(time.ticks_ms(), -_TICK_MS)
    while True:
        now = time.ticks_ms()
        if redraw.is_set() or time.ticks_diff(now, last) >= _TICK_MS:
            redraw.clear()
            last = now
            link(now)
            fx = ui.tick(now)  # e.g. the annul of an OK the turnstile never turned for
            if fx:
                apply(fx)
            if ui.version != shown:
                shown = ui.version
                draw(fb, ui, gate)
                frame = fb.show()
                board.event("screen", {"state": ui.state, "l1": ui.l1, "l2": ui.l2, "frame": frame})
        await asyncio.sleep_ms(_POLL_MS)


async def sound(board, sounds):
    """Play each sound name from the `sounds` queue on the board's buzzer."""
    pwm = board.buzzer()
    while True:
        name = await sounds.get()
        board.event("buzzer", {"sound": name, "ms": pattern_ms(name) if name in PATTERNS else 0})
        await play(pwm, name)


async def relay(board, relays, ms):
    """One pulse of `ms` per item of the `relays` queue (the board's relay already has its polarity)."""
    pin = board.relay()
    while True:
        await relays.get()
        if pin is None:
            board.event("relay", {"error": "no relay on this board"})
            continue
        board.event("relay", {"ms": ms})
        late = await pulse(pin, ms)
        if late > 50:
            board.event("relay", {"late_ms": late})  # the loop stalled; the board's timer kept the pulse


def turned(board, ui, now):
    """The turnstile's rotation sensor fired (unix: a `turned` line; esp32: the "turn" input's IRQ)."""
    board.event("turned", {"watching": ui.watch is not None})
    ui.turned(now)


async def buttons(board, ui, apply):
    """Board button presses -> the UI; its effects go to `apply`. board.buttons() returns () when
    nothing was pressed, so the 50 ms poll allocates nothing."""
    while True:
        for name in board.buttons():
            now = time.ticks_ms()
            if name == "turned":
                turned(board, ui, now)
                continue
            # While a PIN is typed the presses would spell it out: log that a button was pressed, not which.
            board.event("button", {"name": "*" if ui.state == "PIN" else name})
            apply(ui.button(name, now))
        await asyncio.sleep_ms(50)
