# ESP32 DevKitC board layer: UART scanner, I2C OLED, PWM buzzer, relay, buttons and the WiFi supervisor.
# Pins come from the board profile (hardware/boards/esp32-devkitc.json, copied to /board.json by the
# build), the single source of truth shared with the wiring docs and checked by tests.
import asyncio
import json
import os
import sys
import time

from micropython import const
import machine
import network

from hx.ssd1306 import SSD1306_I2C

_EPOCH_2000 = 946684800  # seconds from 1970 to 2000: older ESP32 builds count from 2000-01-01
_SET_AFTER = 1704067200  # 2024-01-01 (Unix seconds): an earlier clock was never set


# Without a readable /board.json only the OLED of the DevKitC wiring is tried, to show BOOT FAULT; no
# other pin is driven (on another board those GPIOs may be anything).
_FALLBACK = {"board": "esp32-devkitc",
             "oled": {"i2c": 0, "sda": 21, "scl": 22, "freq": 400000, "addr": 60, "width": 128, "height": 64}}
_FAULT_MS = const(15000)  # a boot fault stays on screen this long before the reset
_MAINT_MS = const(600000)  # the watchdog's timeout while someone works at the REPL (mpremote)


def load_profile(path="/board.json"):
    with open(path) as f:
        return json.load(f)


class NullDisplay:
    """Stands in when no OLED answers on I2C: the device still scans, beeps and logs."""

    def __getattr__(self, name):
        return lambda *a, **k: None


class Relay:
    """The relay output as value(1) = closed, whatever its polarity (the profile's active_high).

    close_for(ms) closes it and arms a one-shot hardware timer that opens it at the deadline: a stalled
    event loop (a blocking call, a long GC) cannot stretch the pulse; value(0) from the relay task
    opens it too (whichever comes first) and disarms the timer."""

    def __init__(self, pin, active_high, timer_id):
        self.pin = pin
        self.on = 1 if active_high else 0
        self.timer_id = timer_id
        self.timer = None
        self.release = self.open  # bound once: the timer callback allocates nothing

    def value(self, v=None):
        if v is None:
            return 1 if self.pin.value() == self.on else 0
        if v:
            self.pin.value(self.on)
        else:
            self.open(None)
            if self.timer is not None:
                self.timer.deinit()

    def open(self, _timer):
        self.pin.value(1 - self.on)

    def close_for(self, ms):
        if self.timer is None:
            self.timer = machine.Timer(self.timer_id)
        self.pin.value(self.on)
        self.timer.init(mode=machine.Timer.ONE_SHOT, period=ms, callback=self.release)


_TURN_QUIET_MS = const(30)  # turn-sensor edges closer than this to the previous one are bounce
_RING = const(32)  # events kept in RAM for a console that attaches later
_LONG = const(16)  # polls (~50 ms each): a press held 0.8 s is a long press
_REPEAT = const(8)  # then up/down repeat their long step every 0.4 s while held


class Buttons:
    """Active-low inputs with internal pull-ups, polled every ~50 ms by the buttons task.

    A level counts once it has been read twice in a row (debounce). up/down are reported when pressed;
    held, up/down add "up_long"/"down_long" (step x10) every 0.4 s. ok is reported on release, or as
    "ok_long" once held 0.8 s (PIN menu / cancel), so that a long press never also counts as a short one.
    State lives in flat lists indexed like `names`: a poll with nothing pressed allocates nothing.
    """

    def __init__(self, pins):
        self.names = list(pins)
        self.pins = [machine.Pin(pins[n], machine.Pin.IN, machine.Pin.PULL_UP) for n in self.names]
        self.longs = [n + "_long" for n in self.names]
        k = len(self.names)
        self.state = bytearray(k)
        self.count = bytearray(k)
        self.held = [0] * k

    def pin(self, name):
        return self.pins[self.names.index(name)]

    def poll(self):
        out = None
        for i in range(len(self.names)):
            down = 1 if self.pins[i].value() == 0 else 0
            if down == self.state[i]:
                self.count[i] = 0
                if down:
                    h = self.held[i] = self.held[i] + 1
                    ok = self.names[i] == "ok"
                    if (ok and h == _LONG) or (not ok and h >= _LONG and (h - _LONG) % _REPEAT == 0):
                        out = out or []
                        out.append(self.longs[i])
                continue
            self.count[i] += 1
            if self.count[i] >= 2:
                self.state[i] = down
                self.count[i] = 0
                name = self.names[i]
                if down:
                    self.held[i] = 0
                    if name != "ok":
                        out = out or []
                        out.append(name)
                elif name == "ok" and self.held[i] < _LONG:
                    out = out or []
                    out.append("ok")
        return out or ()


class TurnSensor:
    """The turnstile's rotation sensor (to GND, pull-up): falling edges are counted in an interrupt,
    so a pulse of a few ms is never missed between polls; edges closer than _TURN_QUIET_MS to the
    previous one are contact bounce. The ThreadSafeFlag wakes the turn task at once."""

    def __init__(self, pin):
        self.pin = machine.Pin(pin, machine.Pin.IN, machine.Pin.PULL_UP)
        self.turns = 0
        self.last = time.ticks_add(time.ticks_ms(), -_TURN_QUIET_MS)
        self.flag = asyncio.ThreadSafeFlag()
        self.edge = self.on_edge  # bound once: the handler allocates nothing
        self.pin.irq(trigger=machine.Pin.IRQ_FALLING, handler=self.edge)

    def on_edge(self, _pin):
        now = time.ticks_ms()
        if time.ticks_diff(now, self.last) >= _TURN_QUIET_MS:
            self.turns += 1
            self.flag.set()
        self.last = now

    def take(self):
        state = machine.disable_irq()  # read and clear as one step: an edge in between is not lost
        n, self.turns = self.turns, 0
        machine.enable_irq(state)
        return n


class Board:
    name = "esp32-devkitc"

    fault_ms = _FAULT_MS
    outbox_cap = 500  # queued scans at most: 500 x 17 B of index (hx/outbox.py) on a 32-bit heap

    def __init__(self, profile=None):
        self.fault = None  # why the board cannot run the app (shown as BOOT FAULT by hx.start)
        try:
            self.p = profile if profile is not None else load_profile()
        except (OSError, ValueError) as e:
            self.p = _FALLBACK
            self.fault = "board.json: %s" % ("missing" if isinstance(e, OSError) else "bad JSON")
        self.name = self.p.get("board", self.name)
        self.wdt = None
        self.health = None
        self.on_turn = None
        self.turn = None
        self.ring = []  # the last _RING events (ticks, kind, data); once full, newest at ring_at - 1
        self.ring_at = 0
        self.out = sys.stdout
        self.console = self.p.get("console") == "always"
        self.stdin = None
        self.flash = ""  # paths like "/config.json" on the root filesystem
        self.wlan = network.WLAN(network.STA_IF)
        self._buttons = None
        self.uart = None

    def event(self, ev, data=None):
        """Kept in a ring of the last _RING events; printed as a JSON line only while a console is
        attached (printing ~1 KB per scan to USB serial at 115200 blocks the loop ~90 ms)."""
        entry = (time.ticks_ms(), ev, data)
        if len(self.ring) < _RING:
            self.ring.append(entry)
        else:
            self.ring[self.ring_at] = entry
        self.ring_at = (self.ring_at + 1) % _RING
        if self.console or self.attached():
            if not self.console:
                self.console = True
                self.dump()  # someone just attached: what happened lately, oldest first
            else:
                self.write(entry)

    def attached(self):
        """A console is attached once something arrived on USB serial (a key, mpremote): the bytes
        stay unread for the REPL; only their presence is polled."""
        if self.stdin is None:
            import select

            self.stdin = select.poll()
            self.stdin.register(sys.stdin, select.POLLIN)
        return bool(self.stdin.poll(0))

    def write(self, entry):
        rec = {"t": entry[0], "ev": entry[1]}
        if entry[2]:
            rec.update(entry[2])
        self.out.write(json.dumps(rec) + "\n")

    def dump(self):
        n = len(self.ring)
        for i in range(n):
            self.write(self.ring[(self.ring_at + i) % n] if n == _RING else self.ring[i])

    def start(self, cfg, health=None, on_turn=None):
        """Board tasks; `health() -> None or why` decides whether the watchdog is fed; `on_turn()` is
        called for each turn of the turnstile's rotation sensor (profile "turn")."""
        self.wifi = cfg["wifi"]
        self.health = health
        self.on_turn = on_turn
        tasks = [("wifi", self.wifi_task), ("watchdog", self.watchdog_task)]
        if self.p.get("turn") and on_turn:
            self.turn = TurnSensor(self.p["turn"]["pin"])
            tasks.append(("turn", self.turn_task))
        return tasks

    async def turn_task(self):
        turn, on_turn = self.turn, self.on_turn
        if turn is None or on_turn is None:
            raise ValueError("no turn sensor")  # start() adds this task only with one
        while True:
            await turn.flag.wait()
            for _ in range(turn.take()):
                on_turn()

    async def watchdog_task(self):
        """Feed a 30 s hardware watchdog once a second, but only while the app's health checks pass:
        a stalled loop, a wedged link or a stuck outbox resets the chip (hx/health.py)."""
        self.wdt = machine.WDT(timeout=30000)
        said = None
        while True:
            why = self.health() if self.health else None
            if why is None:
                self.wdt.feed()
            elif why != said:
                self.event("unhealthy", {"why": why})
            said = why
            await asyncio.sleep_ms(1000)

    def maintenance(self):
        """Someone interrupted the app at the REPL (mpremote, provisioning): an ESP32 watchdog cannot
        be stopped once started, so give them _MAINT_MS before it resets the board (and runs the app
        again). Re-creating the WDT sets its new timeout (ESP-IDF task watchdog reconfigure)."""
        if self.wdt is not None:
            self.wdt = machine.WDT(timeout=_MAINT_MS)
            self.wdt.feed()

    async def wifi_task(self):
        """Keep the station connected: (re)connect with back-off. The clock comes from the gateway
        (its presence message); NTP only if the profile names a server, in a thread of its own."""
        self.wlan.active(True)
        if self.p.get("wifi_pm") == "none":
            # Mains-powered reader: power save would add 100-300 ms to every verdict's arrival.
            self.wlan.config(pm=self.wlan.PM_NONE)
        delay = 2000
        ntp = self.p.get("ntp")
        while True:
            if self.wlan.isconnected():
                delay = 2000
                if ntp:
                    self._ntp_thread(ntp)
                    ntp = None
                await asyncio.sleep_ms(500)
                continue
            if not self.wifi["ssid"]:
                self.event("wifi", {"state": "no ssid configured"})
                await asyncio.sleep_ms(30000)
                continue
            self.event("wifi", {"state": "connecting", "ssid": self.wifi["ssid"]})
            try:
                self.wlan.disconnect()
            except OSError:
                pass
            self.wlan.connect(self.wifi["ssid"], self.wifi["password"])
            for _ in range(40):
                if self.wlan.isconnected():
                    break
                await asyncio.sleep_ms(250)
            if self.wlan.isconnected():
                self.event("wifi", {"state": "up", "ip": self.wlan.ifconfig()[0]})
            else:
                self.event("wifi", {"state": "retry", "in_ms": delay})
                await asyncio.sleep_ms(delay)
                delay = min(delay * 2, 60000)

    def _ntp_thread(self, host):
        """NTP (DNS + a 1 s UDP wait, both blocking) in a thread of its own, every 6 h: never on the
        event loop. Only when the profile asks ("ntp": "<server>"); the gateway's clock is the default."""
        import _thread

        def sync():
            import ntptime

            ntptime.host = host
            while True:
                try:
                    ntptime.settime()
                except Exception:
                    pass
                time.sleep(21600)

        _thread.start_new_thread(sync, ())

    def set_time(self, t):
        """Set the RTC to Unix time `t` (from the gateway's presence message)."""
        if time.gmtime(0)[0] == 2000:
            t -= _EPOCH_2000
        tm = time.gmtime(t)
        machine.RTC().datetime((tm[0], tm[1], tm[2], tm[6], tm[3], tm[4], tm[5], 0))

    def net_up(self):
        return self.wlan.isconnected()

    def scanner(self):
        s = self.p["scanner"]
        self.uart = machine.UART(s["uart"], baudrate=s["baud"], tx=s["tx"], rx=s["rx"],
                                 rxbuf=s.get("rxbuf", 1024), timeout=0)
        uart = self.uart

        def set_baud(baud):
            uart.init(baudrate=baud, tx=s["tx"], rx=s["rx"], timeout=0)

        return asyncio.StreamReader(uart), asyncio.StreamWriter(uart, {}), set_baud

    def display(self):
        o = self.p["oled"]
        i2c = machine.I2C(o["i2c"], sda=machine.Pin(o["sda"]), scl=machine.Pin(o["scl"]), freq=o["freq"])
        try:
            return SSD1306_I2C(o["width"], o["height"], i2c, o["addr"])
        except OSError:
            self.event("oled", {"error": "no display at 0x%02x" % o["addr"]})
            return NullDisplay()

    def buzzer(self):
        return machine.PWM(machine.Pin(self.p["buzzer"]["pin"]), freq=2000, duty_u16=0)

    def relay(self):
        r = self.p.get("relay")
        if not r:
            return None
        high = r.get("active_high", True)
        # boot.py has already driven it open; this keeps it so (value = the open level).
        return Relay(machine.Pin(r["pin"], machine.Pin.OUT, value=0 if high else 1), high, r.get("timer", 0))

    def camera(self, cfg):
        """The camera of a camera board's profile (PSRAM required), or None (a UART scanner board)."""
        pins = self.p.get("camera")
        if not pins:
            return None
        from hx.boards.esp32cam import Camera  # only camera firmware has the `camera` module

        try:
            return Camera(pins, cfg)
        except Exception as e:  # no sensor answering on SCCB, no PSRAM for the frame buffers
            self.event("camera", {"error": repr(e)})
            return None

    def buttons(self):
        """Names pressed since the last poll, () when none (the turn sensor has its own IRQ task)."""
        if self._buttons is None:
            self._buttons = Buttons(self.p.get("buttons", {}))
        return self._buttons.poll()

    def net_info(self):
        if not self.wlan.isconnected():
            return "", 0
        try:
            rssi = self.wlan.status("rssi")
        except Exception:
            rssi = 0
        return self.wlan.ifconfig()[0], rssi

    def random(self, n):
        """n random bytes (the install id). The ESP32's RNG is only truly random with the radio on
        (ESP-IDF), and this runs at boot before the WiFi task: switch the station on first."""
        try:
            self.wlan.active(True)
        except OSError:
            pass
        return os.urandom(n)

    def unix_time(self):
        t = time.time()
        if time.gmtime(0)[0] == 2000:
            t += _EPOCH_2000
        return t if t >= _SET_AFTER else 0

    def reboot(self):
        self.event("reboot")
        time.sleep_ms(100)
        machine.reset()
        sys.exit(0)
