# Unit tests of the app's glue (hx.app.App) with a fake board: scan -> outbox -> verdict -> effects.
import json

import hx.ui as U
import t
from hx.app import App
from hx.start import read_config
from hx.config import validate


class Board:
    name = "test"

    def __init__(self, flash):
        self.flash = flash
        self.events = []

    def event(self, ev, data=None):
        self.events.append((ev, data or {}))

    def unix_time(self):
        return 1795392000

    async def wait_net(self):
        return

    def net_info(self):
        return "10.0.0.9", -50

    def evs(self, ev):
        return [d for e, d in self.events if e == ev]


def _app(mode="turnstile", **kw):
    raw = {"device": "dev-1", "mode": mode, "outbox_max": 3}
    raw.update(kw)
    b = Board(t.tmpdir())
    return App(b, validate(raw), 7), b


def _verdict(sid, ok=True, reason="OK", sound="ok"):
    return json.dumps(
        {"v": 1, "sid": sid, "ok": ok, "reason": reason, "l1": "L1", "l2": "L2", "sound": sound, "left": 1}
    ).encode()


def test_scan_to_ok_pulses_relay():
    app, b = _app()
    app.ui.link(True, 0, 0)
    app.on_line(b"HXDEMO-1\r\n", 10)
    t.eq(len(app.outbox), 1)
    sid, payload = app.outbox.due(10)[0]
    t.eq(sid, "7-1", "boot counter 7, first scan")
    scan = json.loads(payload)
    t.eq((scan["code"], scan["qty"], scan["dir"], scan["at"]), ("HXDEMO-1", 1, "in", 1795392000))
    t.eq(app.ui.state, U.CHECKING)
    app.on_verdict(_verdict("7-1"), 20)
    t.eq(app.ui.state, U.OK)
    t.eq(len(app.outbox), 0)
    t.eq(app.sounds.items, ["ok"])
    t.eq(app.relays.items, [1])


def test_stale_and_forged_verdicts_ignored():
    app, b = _app()
    app.ui.link(True, 0, 0)
    app.on_line(b"A", 0)
    app.on_verdict(_verdict("7-9"), 1)
    app.on_verdict(_verdict("6-1"), 1)
    app.on_verdict(b"garbage", 1)
    app.on_verdict(b'{"v":1,"sid":"7-1","ok":true,"reason":"EXPIRED"}', 1)
    t.eq(app.ui.state, U.CHECKING, "no OK from anything but a real verdict")
    t.eq(app.relays.items, [])
    t.eq(len(b.evs("stale_verdict")), 2)
    t.eq(len(b.evs("bad_verdict")), 2)
    t.eq(len(app.outbox), 1)


def test_dedupe_garbage_and_full():
    app, b = _app()
    app.on_line(b"A", 0)
    app.on_line(b"A", 100)
    t.eq(len(app.outbox), 1, "re-read ignored")
    app.on_line(b"\x00\x01\x02", 200)
    t.eq(app.ui.state, U.ERROR)
    app.on_line(b"B", 300)
    app.on_line(b"C", 400)
    app.on_line(b"D", 500)
    t.eq(len(app.outbox), 3)
    t.eq(app.ui.state, U.OUTBOX_FULL)
    t.eq(b.evs("outbox_full")[0]["count"], 1)
    app.on_line(b"D", 600)
    t.eq(app.outbox.full_count, 2, "rescan after full is tried again, not deduped")
    t.eq([json.loads(p)["code"] for _, p in app.outbox.due(700)], ["A", "B", "C"])


def test_handheld_qty_and_offline():
    app, b = _app("handheld")
    app.ui.booted(0)
    app.ui.button("up", 0)
    app.ui.button("up", 0)
    app.on_line(b"PACK-1", 10)
    t.eq(json.loads(app.outbox.due(10)[0][1])["qty"], 3)
    t.eq(app.ui.qty, 1, "qty resets after a scan")
    t.eq(app.ui.state, U.OFFLINE)
    t.eq(app.sounds.items, ["attention"])


def test_commands():
    app, b = _app()
    app.on_command(b'{"v":1,"cmd":"beep","args":{"sound":"deny"}}', 0)
    t.eq(app.sounds.items, ["deny"])
    app.on_command(b'{"v":1,"cmd":"show","args":{"l1":"Hi","l2":"there","secs":2}}', 0)
    t.eq((app.ui.state, app.ui.l1), (U.MESSAGE, "Hi"))
    app.on_command(b'{"v":1,"cmd":"status"}', 0)
    t.true(app.status_now.is_set(), "status requested")
    app.on_command(b'{"v":1,"cmd":"dance"}', 0)
    app.on_command(b"nope", 0)
    t.eq([d.get("ignored") for d in b.evs("cmd") if "ignored" in d], ["dance"])
    t.eq(len([d for d in b.evs("cmd") if "error" in d]), 1)


def test_status_payload():
    app, b = _app()
    st = json.loads(app.status_payload())
    t.eq(
        (st["state"], st["board"], st["ip"], st["rssi"], st["mode"], st["outbox"]),
        ("online", "test", "10.0.0.9", -50, "turnstile", 0),
    )
    t.true(st["heap"] > 0, "free heap reported")


def test_outbox_survives_app_restart():
    app, b = _app()
    app.on_line(b"A", 0)
    app.on_line(b"B", 10)
    app2 = App(b, app.cfg, 8)
    t.eq([s for s, _ in app2.outbox.due(0)], ["7-1", "7-2"])
    app2.on_line(b"C", 0)
    t.eq(app2.outbox.sids[-1], "8-1", "new boot, new sid prefix")


def test_read_config_unloads_the_validator():
    import sys

    b = Board(t.tmpdir())
    with open(b.flash + "/config.json", "w") as f:
        f.write('{"device": "d-9", "mode": "turnstile"}')
    cfg, err = read_config(b)
    t.eq((cfg["device"], cfg["mode"], err), ("d-9", "turnstile", None))
    t.true("hx.config" not in sys.modules, "validator unloaded after boot")
    with open(b.flash + "/config.json", "w") as f:
        f.write('{"device": "d 9"}')
    cfg, err = read_config(b)
    t.eq(cfg, None)
    t.true(err.startswith("device:"), err)


def test_command_trigger_mode_asks_for_reads():
    import asyncio

    from hx import gm65 as G

    app, b = _app("handheld", scanner_mode="command")
    zones = {}

    def module(data):
        # A command-trigger GM65: answers zone commands; a trigger makes it read the code in front of it.
        if data == G.write_zone(0x0002, 1):
            return b"\x02\x00\x00\x01\x00\x33\x31" + b"TICKET-7\r\n"
        if data[2] == 0x08:
            zones[(data[4] << 8) | data[5]] = data[6]
        return bytes((2, 0, 0, 1, zones.get((data[4] << 8) | data[5], 0), 0x33, 0x31))

    s = t.FakeStream(module)
    b.scanner = lambda: (s, s, None)

    async def go():
        task = asyncio.create_task(app.t_scanner())
        for _ in range(300):
            if len(app.outbox):
                break
            await asyncio.sleep_ms(10)
        task.cancel()

    asyncio.run(go())
    t.eq(zones[0x0000] & 3, 1, "module set to command-trigger mode")
    t.true(G.write_zone(0x0002, 1) in s.tx, "trigger sent")
    t.eq([d["code"] for d in b.evs("scan")], ["TICKET-7"])
    t.eq(len(b.evs("bad_code")), 0, "the trigger's reply is not read as a code")
