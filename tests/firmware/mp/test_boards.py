# Board layers on the VM: the esp32 layer against fake machine/network modules built from the board
# profile in hardware/, and the unix layer's files (PBM frames, events, buttons).
import asyncio
import json
import os
import sys
import time

import t

CALLS = []


class _Pin:
    IN = 1
    OUT = 3
    PULL_UP = 2

    def __init__(self, n, mode=None, pull=None, value=None):
        self.n = n
        self.v = 1 if pull == 2 else 0
        CALLS.append(("Pin", n, mode, pull, value))

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = v
        CALLS.append(("set", self.n, v, time.ticks_ms()))

    IRQ_FALLING = 2

    def irq(self, trigger=None, handler=None):
        CALLS.append(("irq", self.n, trigger))
        self.handler = handler


class _UART:
    def __init__(self, n, **kw):
        CALLS.append(("UART", n, kw))

    def init(self, **kw):
        CALLS.append(("UART.init", kw))

    def read(self, n=-1):
        return None

    def write(self, b):
        return len(b)


class _I2C:
    def __init__(self, n, sda=None, scl=None, freq=None):
        CALLS.append(("I2C", n, sda.n, scl.n, freq))
        self.writes = []

    def writeto(self, addr, buf):
        self.writes.append(addr)

    def writevto(self, addr, bufs):
        self.writes.append(addr)


class _Timer:
    """A one-shot timer that really fires on time from another thread, like the ESP32's hardware
    timer fires while the event loop is stuck."""

    ONE_SHOT = 0
    made = []

    def __init__(self, n):
        self.n = n
        self.armed = 0
        _Timer.made.append(self)

    def init(self, mode=None, period=0, callback=None):
        import _thread

        self.armed += 1
        gen = self.armed

        def fire():
            time.sleep_ms(period)
            if self.armed == gen:
                callback(self)

        _thread.start_new_thread(fire, ())

    def deinit(self):
        self.armed += 1


class _WDT:
    made = []

    def __init__(self, timeout=0):
        self.timeout = timeout
        self.feeds = 0
        _WDT.made.append(self)

    def feed(self):
        self.feeds += 1


class _PWM:
    def __init__(self, pin, freq=0, duty_u16=0):
        CALLS.append(("PWM", pin.n, freq, duty_u16))


class _WLAN:
    PM_NONE = 0
    up = False

    def __init__(self, i):
        pass

    def active(self, on=None):
        CALLS.append(("WLAN.active", on))

    def config(self, **kw):
        CALLS.append(("WLAN.config", kw))

    def isconnected(self):
        return _WLAN.up

    def ifconfig(self):
        return ("10.0.0.7", "255.255.255.0", "10.0.0.1", "10.0.0.1")


class _Mod:
    pass


def _fake_modules():
    m = _Mod()
    m.Pin, m.UART, m.I2C, m.PWM, m.Timer, m.WDT = _Pin, _UART, _I2C, _PWM, _Timer, _WDT
    m.disable_irq = lambda: 1
    m.enable_irq = lambda state: None
    n = _Mod()
    n.WLAN = _WLAN
    n.STA_IF = 0
    sys.modules["machine"] = m
    sys.modules["network"] = n


def test_esp32_board_uses_profile_pins():
    _fake_modules()
    from hx.boards import esp32

    prof = json.loads(t.read(t.HARDWARE + "/boards/esp32-devkitc.json"))
    b = esp32.Board(prof)
    t.eq(b.name, "esp32-devkitc")
    CALLS.clear()
    r, w, set_baud = b.scanner()
    s = prof["scanner"]
    t.eq(
        CALLS[0],
        (
            "UART",
            s["uart"],
            {"baudrate": s["baud"], "tx": s["tx"], "rx": s["rx"], "rxbuf": s["rxbuf"], "timeout": 0},
        ),
    )
    set_baud(115200)
    t.eq(CALLS[-1][1]["baudrate"], 115200)
    CALLS.clear()
    d = b.display()
    o = prof["oled"]
    t.true(("I2C", o["i2c"], o["sda"], o["scl"], o["freq"]) in CALLS, "I2C on profile pins")
    t.eq(d.i2c.writes[0], o["addr"])
    CALLS.clear()
    b.buzzer()
    t.true(("PWM", prof["buzzer"]["pin"], 2000, 0) in CALLS, "buzzer pin")
    CALLS.clear()
    b.relay()
    t.eq(CALLS[0][1], prof["relay"]["pin"])
    CALLS.clear()
    t.eq(list(b.buttons()), [], "no button pressed (pull-ups)")
    want = list(prof["buttons"].values())
    t.eq(
        sorted(c[1] for c in CALLS if c[0] == "Pin"),
        sorted(want),
        "the buttons (the turn sensor has its IRQ)",
    )
    ok = b._buttons.pin("ok")
    up = b._buttons.pin("up")
    ok.v = 0
    t.eq(list(b.buttons()), [], "one low reading may be a bounce")
    ok.v = 1
    t.eq(list(b.buttons()), [], "it was")
    ok.v = 0
    b.buttons()
    t.eq(list(b.buttons()), [], "ok counts on release (a long press must not also be a short one)")
    ok.v = 1
    b.buttons()
    t.eq(b.buttons(), ["ok"], "released: a short press")
    t.eq(list(b.buttons()), [], "reported once")
    ok.v = 0
    got = []
    for _ in range(20):
        got += b.buttons()
    ok.v = 1
    for _ in range(3):
        got += b.buttons()
    t.eq(got, ["ok_long"], "held 0.8 s: one long press, no short one on release")
    up.v = 0
    b.buttons()
    t.eq(b.buttons(), ["up"], "up counts when pressed")
    got = []
    for _ in range(30):
        got += b.buttons()
    t.eq(got, ["up_long", "up_long"], "held 0.8 s, then every 0.4 s: x10 steps")
    up.v = 1
    b.buttons()
    t.eq(list(b.buttons()), [], "release of up reports nothing")
    import gc

    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    for _ in range(50):
        b.buttons()
    used = gc.mem_alloc() - before
    gc.enable()
    t.eq(used, 0, "50 polls with nothing pressed allocate nothing")
    t.eq(b.net_info(), ("", 0), "no WiFi yet")
    t.eq([n for n, _ in b.start({"wifi": {"ssid": "", "password": ""}})], ["wifi", "watchdog"])
    t.eq(
        [n for n, _ in b.start({"wifi": {"ssid": "", "password": ""}}, None, lambda: 0)],
        ["wifi", "watchdog", "turn"],
        "with a turn sensor in the profile and a receiver for it",
    )
    del sys.modules["machine"]
    del sys.modules["network"]


def test_esp32_relay_polarity_is_the_boards_alone():
    """The profile's active_high is applied by the board layer only: the pulse always closes with
    value(1), and the pin then sits at the level that closes this relay (low for an active-low one)."""
    _fake_modules()
    from hx import sound
    from hx.boards import esp32

    prof = json.loads(t.read(t.HARDWARE + "/boards/esp32-devkitc.json"))
    for active_high, closed, released in ((True, 1, 0), (False, 0, 1)):
        prof["relay"]["active_high"] = active_high
        relay = esp32.Board(prof).relay()
        pin = getattr(relay, "pin", relay)  # the machine.Pin under the board's inverter, if any

        async def go(relay, pin):
            task = asyncio.create_task(sound.pulse(relay, 30))
            await asyncio.sleep_ms(10)
            during = pin.v
            await task
            return [during, pin.v]

        t.eq(asyncio.run(go(relay, pin)), [closed, released], "active_high=%s" % active_high)
    del sys.modules["machine"]
    del sys.modules["network"]


def test_unix_board_files():
    d = t.tmpdir()
    os.putenv("HX_FLASH", d + "/flash")
    os.putenv("HX_OUT", d + "/out")
    from hx.boards.unix import Board

    b = Board()
    b.event("boot", {"x": 1})
    fb = b.display()
    fb.pixel(0, 0, 1)
    fb.pixel(9, 1, 1)
    t.eq(fb.show(), 1)
    with open(d + "/out/oled.pbm", "rb") as f:
        data = f.read()
    t.eq(data[:10], b"P4\n128 64\n", "PBM header")
    body = data[10:]
    t.eq(len(body), 1024)
    t.eq(body[0], 0x80, "(0,0) is the first bit")
    t.eq(body[16 + 1], 0x40, "(9,1): row 1, byte 1, bit 6")
    t.eq(os.stat(d + "/out/oled-0001.pbm")[6], len(data))
    ev = json.loads(t.read(d + "/out/events.log").split("\n")[0])
    t.eq((ev["ev"], ev["x"]), ("boot", 1))
    t.true(ev["t"] > 1600000000000, "wall clock ms")
    t.eq(b.buttons(), [])
    with open(d + "/out/buttons", "a") as f:
        f.write("up\nok\ndo")
    t.eq(b.buttons(), ["up", "ok"])
    with open(d + "/out/buttons", "a") as f:
        f.write("wn\n")
    t.eq(b.buttons(), ["down"], "a line split across writes")
    t.eq(b.unix_time() > 1600000000, True)
    t.eq(b.net_up(), True)
    t.eq(b.scanner(), None, "no HX_UART")
    os.unsetenv("HX_FLASH")
    os.unsetenv("HX_OUT")


def test_boot_py_drives_the_relay_open_first():
    """boot.py puts the relay GPIO at its open level before main.py runs (it floats after a reset)."""
    _fake_modules()
    prof = json.loads(t.read(t.HARDWARE + "/boards/esp32-devkitc.json"))
    src = t.read(t.FIRMWARE + "/boot.py")
    for high, level in ((True, 0), (False, 1)):
        prof["relay"]["active_high"] = high
        path = t.tmpdir() + "/board.json"
        with open(path, "w") as f:
            f.write(json.dumps(prof))
        CALLS.clear()
        exec(src, {"__name__": "boot", "BOARD_JSON": path})
        t.eq(CALLS[0], ("Pin", prof["relay"]["pin"], _Pin.OUT, None, level), "active_high=%s" % high)
    CALLS.clear()
    exec(src, {"__name__": "boot", "BOARD_JSON": "/nonexistent/board.json"})  # must not raise
    t.eq(CALLS, [], "no profile: nothing driven, no crash")
    del sys.modules["machine"]
    del sys.modules["network"]


def test_relay_pulse_does_not_stretch_when_the_loop_stalls():
    """The hardware timer opens the relay at the deadline although the event loop is blocked."""
    _fake_modules()
    from hx import sound
    from hx.boards import esp32

    prof = json.loads(t.read(t.HARDWARE + "/boards/esp32-devkitc.json"))
    relay = esp32.Board(prof).relay()
    pin = prof["relay"]["pin"]

    async def stall():
        await asyncio.sleep_ms(5)
        time.sleep_ms(300)  # a blocking call: no task runs for 300 ms

    async def go():
        CALLS.clear()
        asyncio.create_task(stall())
        t0 = time.ticks_ms()
        late = await sound.pulse(relay, 40)
        sets = [
            (v, time.ticks_diff(at, t0)) for c, n, v, at in [c for c in CALLS if c[0] == "set"] if n == pin
        ]
        return late, sets

    late, sets = asyncio.run(go())
    t.true(late >= 200, "the task woke late: %d ms" % late)
    t.eq(sets[0][0], 1, "closed first")
    t.eq(sets[1][0], 0, "then opened")
    t.true(sets[1][1] < 150, "opened by the timer at ~40 ms, not after the stall: %r" % (sets,))
    del sys.modules["machine"]
    del sys.modules["network"]


def test_esp32_watchdog_is_fed_only_while_healthy_and_spares_the_repl():
    _fake_modules()
    from hx.boards import esp32

    prof = json.loads(t.read(t.HARDWARE + "/boards/esp32-devkitc.json"))
    b = esp32.Board(prof)
    b.event = lambda ev, data=None: CALLS.append((ev, data))
    state = [None]
    tasks = dict(b.start({"wifi": {"ssid": "", "password": ""}}, lambda: state[0]))

    async def go():
        task = asyncio.create_task(tasks["watchdog"]())
        await asyncio.sleep_ms(50)
        fed = b.wdt.feeds
        state[0] = "link stalled"
        await asyncio.sleep_ms(2100)
        task.cancel()
        return fed, b.wdt.feeds

    CALLS.clear()
    fed, later = asyncio.run(go())
    t.eq((b.wdt.timeout, fed), (30000, 1), "30 s watchdog, fed while healthy")
    t.eq(later, fed, "not fed once a health check fails")
    t.eq([c for c in CALLS if c[0] == "unhealthy"], [("unhealthy", {"why": "link stalled"})], "said once")
    b.maintenance()
    t.eq((b.wdt.timeout, b.wdt.feeds), (600000, 1), "Ctrl-C at the REPL: 10 minutes before it resets")
    del sys.modules["machine"]
    del sys.modules["network"]


def test_esp32_board_without_profile_reports_a_fault():
    _fake_modules()
    from hx.boards import esp32

    real = esp32.load_profile
    esp32.load_profile = lambda: json.loads(t.read("/nonexistent/board.json"))
    try:
        b = esp32.Board()
    finally:
        esp32.load_profile = real
    t.eq(b.fault, "board.json: missing")
    CALLS.clear()
    b.display()
    t.true(("I2C", 0, 21, 22, 400000) in CALLS, "the DevKitC's OLED is tried to show the fault")
    del sys.modules["machine"]
    del sys.modules["network"]


def test_esp32_wifi_power_save_off_and_no_ntp_on_the_loop():
    _fake_modules()
    from hx.boards import esp32

    prof = json.loads(t.read(t.HARDWARE + "/boards/esp32-devkitc.json"))
    b = esp32.Board(prof)
    b.event = lambda ev, data=None: None
    tasks = dict(b.start({"wifi": {"ssid": "shop", "password": "pw"}}))
    _WLAN.up = True
    threads = []
    b._ntp_thread = lambda host: threads.append(host)

    async def go():
        task = asyncio.create_task(tasks["wifi"]())
        await asyncio.sleep_ms(30)
        task.cancel()

    CALLS.clear()
    asyncio.run(go())
    t.true(("WLAN.config", {"pm": 0}) in CALLS, "PM_NONE for a mains-powered reader (profile wifi_pm)")
    t.eq(threads, [], "no NTP unless the profile names a server (the gateway gives the time)")
    prof["ntp"] = "10.0.0.1"
    b = esp32.Board(prof)
    b.event = lambda ev, data=None: None
    tasks = dict(b.start({"wifi": {"ssid": "shop", "password": "pw"}}))
    b._ntp_thread = lambda host: threads.append(host)
    asyncio.run(go())
    t.eq(threads, ["10.0.0.1"], "NTP, when asked for, in a thread of its own")
    _WLAN.up = False
    del sys.modules["machine"]
    del sys.modules["network"]


def test_esp32_turn_sensor_counts_short_pulses_by_interrupt():
    _fake_modules()
    from hx.boards import esp32

    prof = json.loads(t.read(t.HARDWARE + "/boards/esp32-devkitc.json"))
    b = esp32.Board(prof)
    b.event = lambda ev, data=None: None
    turns = []
    CALLS.clear()
    tasks = dict(b.start({"wifi": {"ssid": "", "password": ""}}, None, lambda: turns.append(time.ticks_ms())))
    t.true(("irq", prof["turn"]["pin"], _Pin.IRQ_FALLING) in CALLS, "falling-edge IRQ on the turn pin")
    t.true(("Pin", prof["turn"]["pin"], _Pin.IN, _Pin.PULL_UP, None) in CALLS, "with the pull-up")
    edge = b.turn.pin.handler

    async def go():
        task = asyncio.create_task(tasks["turn"]())
        await asyncio.sleep_ms(10)
        edge(b.turn.pin)  # a 5 ms pulse with contact bounce: three edges within a few ms
        edge(b.turn.pin)
        edge(b.turn.pin)
        await asyncio.sleep_ms(5)
        got = len(turns)
        await asyncio.sleep_ms(40)
        edge(b.turn.pin)  # the next turn, 45 ms later
        await asyncio.sleep_ms(5)
        task.cancel()
        return got, len(turns)

    t.eq(asyncio.run(go()), (1, 2), "one turn per pulse, however short; bounce is not a turn")
    del sys.modules["machine"]
    del sys.modules["network"]


def test_esp32_events_go_to_a_ring_and_print_only_with_a_console():
    _fake_modules()
    from hx.boards import esp32

    prof = json.loads(t.read(t.HARDWARE + "/boards/esp32-devkitc.json"))
    b = esp32.Board(prof)

    class Out:
        text = ""

        def write(self, s):
            Out.text += s

    b.out = Out()
    attached = [False]
    b.attached = lambda: attached[0]
    for i in range(40):
        b.event("scan", {"n": i})
    t.eq(Out.text, "", "nothing printed without a console")
    attached[0] = True
    b.event("scan", {"n": 40})
    lines = [json.loads(x) for x in Out.text.splitlines()]
    t.eq([x["n"] for x in lines], list(range(9, 41)), "a console attaching gets the last 32 events first")
    b.event("verdict", {"ok": True})
    t.eq(json.loads(Out.text.splitlines()[-1])["ev"], "verdict", "then every event as it happens")
    del sys.modules["machine"]
    del sys.modules["network"]
