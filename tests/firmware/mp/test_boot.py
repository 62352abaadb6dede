# Boot faults, boot loops, the watchdog's health rules and the crash window (fake board, real code).
import asyncio
import json
import os
import sys
import time

import hx.start as start
from hx import health, store

import t


class Rebooted(Exception):
    pass


class FB:
    """A display that remembers nothing but that it was shown (the screen text is in the UI events)."""

    def __init__(self, board):
        self.board = board

    def __getattr__(self, name):
        return lambda *a, **k: None

    def show(self):
        self.board.shown += 1


class Board:
    name = "test"
    fault = None
    fault_ms = 20

    def __init__(self, flash=None):
        self.flash = flash or t.tmpdir()
        self.events = []
        self.shown = 0
        self.reboots = 0

    def event(self, ev, data=None):
        self.events.append((ev, data or {}))

    def evs(self, ev):
        return [d for e, d in self.events if e == ev]

    def display(self):
        return FB(self)

    def buzzer(self):
        return t.FakePWM()

    def random(self, n):
        return os.urandom(n)

    def unix_time(self):
        return 1795392000

    def net_up(self):
        return True

    def net_info(self):
        return "", 0

    def reboot(self):
        self.reboots += 1
        raise Rebooted()


def _config(b, **kw):
    cfg = {"device": "dev-1", "mode": "turnstile"}
    cfg.update(kw)
    with open(b.flash + "/config.json", "w") as f:
        f.write(json.dumps(cfg))


def _boot(b):
    try:
        return asyncio.run(start.main(b))
    except Rebooted:
        return "rebooted"


def test_fault_is_shown_then_resets():
    b = Board()
    b.fault = "board.json: missing"
    t.eq(_boot(b), "rebooted")
    t.eq(b.evs("boot_fault")[0]["error"], "OSError('board.json: missing',)")
    t.true(b.shown >= 1, "the fault is on the OLED")
    t.eq(b.reboots, 1)


def test_flash_error_on_the_boot_counter_is_a_fault():
    b = Board()
    _config(b)
    os.mkdir(b.flash + "/boot")  # cannot be read or replaced as a file: like a flash error
    t.eq(_boot(b), "rebooted")
    t.eq(len(b.evs("boot_fault")), 1)


def test_memory_error_building_the_app_is_a_fault():
    b = Board()
    _config(b)
    real = store.DirStore.names

    def boom(self):
        raise MemoryError()

    store.DirStore.names = boom
    try:
        t.eq(_boot(b), "rebooted")
    finally:
        store.DirStore.names = real
    t.eq(b.evs("boot_fault")[0]["error"], "MemoryError()")


def test_boot_loop_ends_in_safe_mode_and_a_stable_boot_clears_it():
    b = Board()
    b.fault = "board.json: missing"
    for _ in range(store.BOOT_LIMIT):
        t.eq(_boot(b), "rebooted")

    async def safe():
        try:
            await asyncio.wait_for_ms(start.main(b), 100)
        except asyncio.TimeoutError:
            return "waiting"

    t.eq(asyncio.run(safe()), "waiting", "safe mode waits (no reset, REPL free) instead of looping")
    t.eq(b.evs("safe_mode"), [{"failed_boots": store.BOOT_LIMIT}])
    t.eq(b.reboots, store.BOOT_LIMIT)
    store.boot_stable(b.flash)
    t.eq(store.boot_attempt(b.flash), 0, "a stable boot starts the count again")


def test_config_error_still_waits_for_provisioning():
    b = Board()
    _config(b, mode="bogus")

    async def go():
        try:
            await asyncio.wait_for_ms(start.main(b), 100)
        except asyncio.TimeoutError:
            return "waiting"

    t.eq(asyncio.run(go()), "waiting")
    t.eq(len(b.evs("config_error")), 1)


def test_health_rules():
    p = health.problem
    t.eq(p(1000, 900, 900, 900, True, True, 3), None)
    t.eq(p(20000, 5000, 19000, 19000, True, True, 0), "ui stalled")
    t.eq(p(200000, 199000, 10000, 199000, False, True, 0), "link stalled")
    t.eq(p(700000, 699000, 699000, 1000, True, True, 2), "outbox stuck")
    t.eq(p(700000, 699000, 699000, 1000, True, False, 2), None, "gateway down: waiting is right")
    t.eq(p(700000, 699000, 699000, 1000, False, True, 2), None, "offline: waiting is right")
    c = health.Crashes()
    got = [c.add(i * 1000) for i in range(health.CRASH_LIMIT)]
    t.eq(got[-1], True, "CRASH_LIMIT crashes within the window")
    t.eq(got[:-1], [False] * (health.CRASH_LIMIT - 1))
    c = health.Crashes()
    got = [c.add(i * 60000) for i in range(health.CRASH_LIMIT + 2)]
    t.eq(True in got, False, "crashes spread out: restart, never reset")


def test_crash_window_resets_the_board():
    b = Board()
    _config(b)
    app = asyncio.run(start.main(b))
    for _ in range(health.CRASH_LIMIT - 1):
        app.crash_log.add(time.ticks_ms())

    async def bad():
        raise ValueError("bug")

    try:
        asyncio.run(app.supervise("bad", bad))
    except Rebooted:
        pass
    t.eq(b.reboots, 1)
    t.eq(len(b.evs("crash_reset")), 1)
    sys.modules.pop("hx.rescue", None)


def test_app_health_marks():
    b = Board()
    _config(b)
    app = asyncio.run(start.main(b))
    now = time.ticks_ms()
    t.eq(app.healthy(), None)
    app.ui_at = time.ticks_add(now, -health.UI_STALL_MS - 1000)
    t.eq(app.healthy(), "ui stalled")
    app.link(time.ticks_ms())
    t.eq(app.healthy(), None, "the display tick is the UI's heartbeat")


def test_an_update_on_trial_is_rolled_back_after_unstable_boots():
    import slots

    flash = t.tmpdir()
    t.eq(slots.select(flash), None, "factory firmware")
    st = slots.read(flash)
    st["active"] = "b"
    st["trial"] = {"slot": "b", "prev": "a", "boots": 0}
    slots.write(flash, st)
    for _ in range(slots.TRIAL_BOOTS):
        t.eq(slots.select(flash), flash + "/slots/b", "on trial")
    t.eq(slots.select(flash), flash + "/slots/a", "never stable: back to the previous slot")
    st = slots.read(flash)
    t.eq((st["active"], st["trial"], st["rolled_back"]["slot"]), ("a", None, "b"))
    st["active"] = "b"
    st["trial"] = {"slot": "b", "prev": "a", "boots": 0}
    slots.write(flash, st)
    slots.select(flash)
    t.eq(slots.confirm(flash), True, "a stable boot keeps it")
    t.eq(slots.select(flash), flash + "/slots/b")
    t.eq(slots.confirm(flash), False)
