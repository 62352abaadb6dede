# The output tasks of the app: display, buzzer, relay, and the buttons that feed the UI.
import asyncio
import time

from hx.render import draw
from hx.sound import PATTERNS, pattern_ms, play, pulse

# Each takes the App (board, cfg, ui, mqtt, outbox, queues, events) and runs forever under its supervisor.


async def display(app):
    fb = app.board.display()
    shown = -1
    while True:
        now = time.ticks_ms()
        app.ui.link(app.mqtt.connected and app.gw_up, len(app.outbox), now)
        apply_quiet(app, app.ui.tick(now))
        if app.ui.version != shown:
            shown = app.ui.version
            draw(fb, app.ui, app.cfg["gate"])
            frame = fb.show()
            app.board.event("screen", {"state": app.ui.state, "l1": app.ui.l1, "l2": app.ui.l2,
                                        "frame": frame})
        app.redraw.clear()
        try:
            await asyncio.wait_for_ms(app.redraw.wait(), 100)
        except asyncio.TimeoutError:
            pass


def apply_quiet(app, fx):
    for kind, arg in fx:
        if kind == "sound":
            app.sounds.put(arg)
        else:
            app.act(kind, arg, time.ticks_ms())  # e.g. the annul of an OK the turnstile never turned for


async def sound(app):
    pwm = app.board.buzzer()
    while True:
        name = await app.sounds.get()
        app.board.event("buzzer", {"sound": name, "ms": pattern_ms(name) if name in PATTERNS else 0})
        await play(pwm, name)


async def relay(app):
    pin = app.board.relay()
    while True:
        await app.relays.get()
        if pin is None:
            app.board.event("relay", {"error": "no relay on this board"})
            continue
        app.board.event("relay", {"ms": app.cfg["relay_ms"]})
        await pulse(pin, app.cfg["relay_ms"])


async def buttons(app):
    while True:
        for name in app.board.buttons():
            now = time.ticks_ms()
            if name == "turned":
                # The turnstile's rotation sensor (unix: a `turned` line; esp32: the "turn" input).
                app.board.event("turned", {"watching": app.ui.watch is not None})
                app.ui.turned(now)
                continue
            # While a PIN is typed the presses would spell it out: log that a button was pressed, not which.
            app.board.event("button", {"name": "*" if app.ui.state == "PIN" else name})
            app.apply(app.ui.button(name, now))
        await asyncio.sleep_ms(50)
