# Unit tests of the app's glue (hx.app.App) with a fake board: scan -> outbox -> verdict -> effects.
import json

import hx.ui as U
from hx.app import App
from hx.config import validate
from hx.start import read_config

import t


class Board:
    name = "test"

    def __init__(self, flash):
        self.flash = flash
        self.events = []

    def event(self, ev, data=None):
        self.events.append((ev, data or {}))

    clock = 1795392000

    def unix_time(self):
        return self.clock

    def set_time(self, t):
        self.clock = t

    def random(self, n):
        import os

        return os.urandom(n)

    def net_up(self):
        return True

    def net_info(self):
        return "10.0.0.9", -50

    def evs(self, ev):
        return [d for e, d in self.events if e == ev]


def _app(mode="turnstile", **kw):
    raw = {"device": "dev-1", "mode": mode, "outbox_max": 3}
    raw.update(kw)
    b = Board(t.tmpdir())
    return App(b, validate(raw), 7, IID), b


IID = "Ab3xYz"  # the install id of the test board


def S(seq, boot=7):
    """The scan id the app gives its seq-th scan of this boot."""
    return "%s-%x-%x" % (IID, boot, seq)


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
    t.eq(sid, S(1), "boot counter 7, first scan")
    scan = json.loads(payload)
    t.eq((scan["code"], scan["qty"], scan["dir"], scan["at"]), ("HXDEMO-1", 1, "in", 1795392000))
    t.eq(app.ui.state, U.CHECKING)
    app.on_verdict(_verdict(S(1)), 20)
    t.eq(app.ui.state, U.OK)
    t.eq(len(app.outbox), 0)
    t.eq(app.sounds.items, ["ok"])
    t.eq(app.relays.items, [1])


def test_the_link_is_idle_only_when_nothing_on_screen_waits():
    """The MQTT client makes a blocking DNS lookup only when link_idle() holds (hx/mqtt.py _lookup)."""
    app, b = _app()
    t.eq(app.link_idle(0), True, "READY")
    app.ui.link(True, 0, 0)
    app.on_line(b"HXDEMO-1\r\n", 10)
    t.eq(app.link_idle(20), False, "a scan waits for its verdict on screen")
    t.eq(app.link_idle(10 + app.cfg["verdict_timeout_ms"]), True, "NO ANSWER is due: it waits no more")
    app.on_verdict(_verdict(S(1)), 30)
    t.eq(app.link_idle(40), True, "answered")
    t.true(app.mqtt.idle == app.link_idle, "the client asks the app")


def test_stale_and_forged_verdicts_ignored():
    app, b = _app()
    app.ui.link(True, 0, 0)
    app.on_line(b"A", 0)
    app.on_verdict(_verdict(S(9)), 1)
    app.on_verdict(_verdict(S(1, 6)), 1)
    app.on_verdict(b"garbage", 1)
    app.on_verdict(json.dumps({"v": 1, "sid": S(1), "ok": True, "reason": "EXPIRED"}).encode(), 1)
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
    app2 = App(b, app.cfg, 8, IID)
    t.eq([s for s, _ in app2.outbox.due(0)], [S(1), S(2)])
    app2.on_line(b"C", 0)
    t.eq(app2.outbox.sids[-1], S(1, 8), "new boot, new sid prefix")


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

    from hx import gm65_setup as G

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


def _check_verdict(sid, mx, kind="pack"):
    return json.dumps(
        {
            "v": 1,
            "sid": sid,
            "ok": True,
            "reason": "OK",
            "l1": "VIP",
            "l2": "%d left" % mx,
            "sound": "ok",
            "left": mx,
            "check": True,
            "max": mx,
            "kind": kind,
            "title": "VIP x10",
        }
    ).encode()


def _press(app, *names):
    """Run the real buttons task until it has handled these presses (the board reports them at once)."""
    import asyncio

    from hx import outputs

    pending = [list(names)]

    def buttons():
        out, pending[0] = pending[0], []
        return out

    app.board.buttons = buttons

    async def go():
        task = asyncio.create_task(outputs.buttons(app.board, app.ui, app.apply))
        while pending[0]:
            await asyncio.sleep_ms(1)
        await asyncio.sleep_ms(5)
        task.cancel()

    asyncio.run(go())


def test_handheld_pick_check_then_redeem_through_outbox():
    app, b = _app("handheld", pick=True)
    app.ui.link(True, 0, 0)
    app.on_line(b"VIP-1", 10)
    t.eq(len(app.outbox), 0, "a check is not a redemption: nothing on flash")
    check = json.loads(app.direct)
    t.eq((check["op"], check["code"], check["sid"]), ("check", "VIP-1", S(1)))
    t.eq(b.evs("request"), [{"sid": S(1), "op": "check"}])
    t.eq(app.ui.state, U.CHECKING)
    app.on_verdict(_check_verdict(S(1), 10), 20)
    t.eq((app.ui.state, app.ui.l2), (U.PICK, "10 left  x1"))
    t.eq(len(b.evs("stale_verdict")), 0)
    _press(app, "up", "up", "ok")
    t.eq(len(app.outbox), 1, "the redeem after the pick is durable")
    sid, payload = app.outbox.due(30)[0]
    scan = json.loads(payload)
    t.eq((sid, scan["code"], scan["qty"], "op" in scan), (S(2), "VIP-1", 3, False))
    t.eq(app.ui.state, U.CHECKING)
    app.on_verdict(_verdict(S(2)), 40)
    t.eq(app.ui.state, U.OK)
    t.eq(len(app.outbox), 0)


def test_handheld_pick_voucher_amount():
    app, b = _app("handheld", pick=True)
    app.ui.link(True, 0, 0)
    app.on_line(b"VOUCHER-1", 10)
    app.on_verdict(_check_verdict(S(1), 5000, "value"), 20)
    _press(app, "up_long", "up", "ok")
    scan = json.loads(app.outbox.due(30)[0][1])
    t.eq((scan["amt"], scan["qty"]), (1200, 1))


def test_handheld_pick_denial_and_offline():
    app, b = _app("handheld", pick=True)
    app.ui.link(True, 0, 0)
    app.on_line(b"OLD-1", 10)
    app.on_verdict(_verdict(S(1), False, "EXPIRED", "deny"), 20)
    t.eq(app.ui.state, U.DENIED)
    t.eq(len(app.outbox), 0)
    app.ui.link(False, 0, 30)
    app.on_line(b"PACK-2", 40)
    t.eq(app.direct, None, "offline nothing can be asked")
    scan = json.loads(app.outbox.due(50)[0][1])
    t.eq((scan["code"], scan["qty"], "op" in scan), ("PACK-2", 1, False))
    t.eq(app.ui.state, U.OFFLINE)


def test_handheld_without_pick_redeems_directly():
    app, b = _app("handheld")
    app.ui.link(True, 0, 0)
    app.on_line(b"VIP-1", 10)
    t.eq((len(app.outbox), app.direct), (1, None), "pick off (default): the scan is the redeem")


def test_pin_login_never_logged_nor_stored():
    app, b = _app("handheld", pick=True)
    app.ui.link(True, 0, 0)
    _press(app, "ok_long")
    t.eq(app.ui.state, U.PIN)
    # PIN 2580: empty -> 0 -> 1 -> 2 is three "up"s, and so on.
    _press(app, *(["up"] * 3 + ["ok"] + ["up"] * 6 + ["ok"] + ["up"] * 9 + ["ok"] + ["up"] + ["ok"] + ["ok"]))
    req = json.loads(app.direct)
    t.eq((req["op"], req["pin"]), ("login", "2580"))
    t.eq(len(app.outbox), 0, "a PIN never goes to flash")
    t.eq(app.ui.state, U.CHECKING)
    logged = json.dumps(b.events)
    t.true("2580" not in logged, "PIN in the event log")
    t.eq(set(d["name"] for d in b.evs("button")), {"ok_long", "*"}, "which button was pressed is not logged")
    app.on_verdict(
        json.dumps(
            {
                "v": 1,
                "sid": req["sid"],
                "ok": True,
                "reason": "OK",
                "l1": "HELLO ANA",
                "l2": "signed in",
                "sound": "ok",
                "left": None,
            }
        ).encode(),
        50,
    )
    t.eq((app.ui.state, app.ui.l1), (U.OK, "HELLO ANA"))
    _press(app, "ok", "ok_long", "ok")
    t.eq(json.loads(app.direct)["op"], "logout")


def test_turnstile_annul_through_outbox():
    app, b = _app("turnstile", turn_sensor=True, turn_ms=2000)
    app.ui.link(True, 0, 0)
    app.on_line(b"GATE-1", 0)
    app.on_verdict(_verdict(S(1)), 100)
    t.eq(app.relays.items, [1])
    app.apply(app.ui.tick(2099))
    t.eq(len(app.outbox), 0)
    app.apply(app.ui.tick(2100))
    t.eq(len(app.outbox), 1, "the annul is durable")
    scan = json.loads(app.outbox.due(2100)[0][1])
    t.eq((scan["op"], scan["ref"], scan["sid"], "code" in scan), ("annul", S(1), S(2), False))
    t.eq((app.ui.state, app.ui.l1), (U.DENIED, "NOT PASSED"))
    app.on_verdict(
        json.dumps(
            {
                "v": 1,
                "sid": S(2),
                "ok": True,
                "reason": "OK",
                "l1": "ANNULLED",
                "l2": "",
                "sound": "ok",
                "left": 1,
            }
        ).encode(),
        2200,
    )
    t.eq(app.relays.items, [1], "no second pulse for an annul")
    t.eq(app.ui.l2, "annulled")
    # A turn seen in time: nothing is annulled.
    app.on_line(b"GATE-2", 3000)
    app.on_verdict(_verdict(S(3)), 3100)
    _press(app, "turned")
    app.apply(app.ui.tick(9000))
    t.eq(len(app.outbox), 0)


def test_request_dropped_when_the_screen_gave_up():
    import asyncio

    app, b = _app("handheld", pick=True, verdict_timeout_ms=500)
    app.ui.link(True, 0, 0)
    _press(app, "ok_long", "up", "up", "up", "up", "ok", "up", "ok", "up", "ok", "up", "ok", "ok")
    t.eq(json.loads(app.direct)["pin"], "3000")
    app.ui.tick(app.ui.since + 500)
    t.eq(app.ui.l1, "NO ANSWER")

    async def go():
        task = asyncio.create_task(app.t_uplink())  # the link is down: nothing is published
        await asyncio.sleep_ms(20)
        task.cancel()

    asyncio.run(go())
    t.eq(app.direct, None, "a login the screen gave up on is never sent later")


def _no_answer(app):
    """Let the CHECKING screen time out (NO ANSWER)."""
    app.apply(app.ui.tick(app.ui.since + app.cfg["verdict_timeout_ms"]))
    t.eq(app.ui.l1, "NO ANSWER")


def test_hole1_boot_gives_every_sid_the_install_id():
    """Hole 1: the boot sequence makes (or reads) the install id through the board's random source;
    every scan id starts with it, and an erased flash gives the same device new ids."""
    import asyncio
    import os

    from hx import start

    b = Board(t.tmpdir())
    with open(b.flash + "/config.json", "w") as f:
        f.write('{"device": "d-9", "mode": "turnstile"}')
    app = asyncio.run(start.main(b))
    iid = t.read(b.flash + "/install")
    app.ui.link(True, 0, 0)
    app.on_line(b"CODE-A", 0)
    t.eq(app.outbox.sids, ["%s-1-1" % iid])
    t.eq(json.loads(app.outbox.due(0)[0][1])["sid"], "%s-1-1" % iid)
    for name in ("install", "boot"):
        os.remove(b.flash + "/" + name)
    t.rmtree(b.flash + "/outbox")  # the rest of a flash erase
    app2 = asyncio.run(start.main(b))
    t.eq(app2.boot, 1, "boot counter from 1 again")
    app2.ui.link(True, 0, 0)
    app2.on_line(b"CODE-B", 0)
    t.true(app2.outbox.sids[0] != "%s-1-1" % iid, "boot 1, scan 1 of a new install is another id")


def test_hole19_late_ok_is_logged_and_counted_never_acted_on():
    """Hole 19: an OK that arrives after NO ANSWER pulses no relay and plays no OK sound; it is logged
    (late_verdict) and counted in the status payload."""
    app, b = _app()
    app.ui.link(True, 0, 0)
    app.on_line(b"GATE-1", 0)
    _no_answer(app)
    app.sounds.items.clear()
    app.on_verdict(_verdict(S(1)), 60000)
    t.eq(app.relays.items, [], "no pulse for whoever stands there now")
    t.eq(app.sounds.items, [], "no OK sound")
    t.true(app.ui.state != U.OK, "no OK screen")
    t.eq(len(app.outbox), 0, "the verdict is final: the scan leaves the outbox")
    late = b.evs("late_verdict")
    t.eq([(d["sid"], d["ok"], d["reason"], d["count"]) for d in late], [(S(1), True, "OK", 1)])
    t.eq(json.loads(app.status_payload())["late"], 1)


def test_hole19_offline_queued_ok_never_acted_on():
    """Hole 19: a scan queued offline is not awaited: its OK, after the upload, opens nothing."""
    app, b = _app()
    app.on_line(b"GATE-1", 0)
    t.eq(app.ui.state, U.OFFLINE)
    app.ui.link(True, 0, 100)
    app.sounds.items.clear()
    app.on_verdict(_verdict(S(1)), 200)
    t.eq((app.relays.items, app.sounds.items), ([], []))
    t.eq(app.ui.state, U.READY)
    t.eq(app.late, 1)


def test_hole13_rescan_reuses_the_unanswered_scan():
    """Hole 13: a rescan of a code whose scan is still unanswered rejoins it (same sid, same payload,
    published again at once, CHECKING) instead of queuing a second redemption; its verdict, now on
    screen, acts."""
    app, b = _app(dedupe_ms=1000)
    app.ui.link(True, 0, 0)
    app.on_line(b"GATE-1", 0)
    first = app.outbox.due(0)
    t.eq([s for s, _ in first], [S(1)])
    _no_answer(app)
    app.on_line(b"GATE-1", 500)
    t.eq(len(b.evs("rescan")), 0, "an immediate re-read is still a dedupe")
    app.on_line(b"GATE-1", 9000)
    t.eq(len(app.outbox), 1, "no second scan queued")
    t.eq(b.evs("rescan")[0]["sid"], S(1))
    t.eq((app.ui.state, app.ui.waiting), (U.CHECKING, S(1)))
    t.eq(app.outbox.due(9000), first, "republished at once (still in flight), the same payload")
    app.on_verdict(_verdict(S(1)), 9100)
    t.eq(app.relays.items, [1], "the original verdict, on screen: the holder may pass")
    t.eq(app.late, 0)
    app.on_line(b"GATE-1", 20000)
    t.eq(app.outbox.sids, [S(2)], "answered: a rescan is a new scan")


def test_hole13_rescan_rejoins_only_the_same_request():
    """Hole 13: the reused scan is the same request (op, qty, amt, dir) the holder saw on screen; a
    scan queued offline is never rejoined (someone may have been let in by hand already): a rescan
    of its code is a new scan, and so is one asking for another quantity."""
    app, b = _app("handheld", dedupe_ms=0, outbox_max=8)
    app.on_line(b"PACK-1", 0)  # offline: queued, qty 1
    app.on_line(b"PACK-1", 10)
    t.eq(len(app.outbox), 2, "a rescan of a scan queued offline is a new scan")
    t.eq(app.ui.state, U.OFFLINE)
    app.ui.button("up", 20)
    app.on_line(b"PACK-1", 30)
    t.eq(len(app.outbox), 3, "qty 2 is another request")
    picker, b2 = _app("handheld", pick=True, dedupe_ms=0)
    picker.on_line(b"PACK-1", 0)  # offline: a plain redeem
    picker.ui.link(True, 0, 10)
    picker.on_line(b"PACK-1", 20)
    t.eq(len(picker.outbox), 1, "the queued redeem stays as it is")
    t.eq(picker.direct is not None, True, "online again, the picker checks the code afresh")


def test_hole20_transient_answer_keeps_the_scan_and_backs_off():
    """Hole 20: INTERNAL / RATE_LIMITED / UNKNOWN_DEVICE (or "retry": true) leave the scan in the
    outbox, to be resent with back-off; a final verdict removes it. SID_REUSED is final: the scan
    leaves, the refusal is logged and counted."""
    app, b = _app("handheld")
    app.on_line(b"A", 0)  # queued offline
    app.on_line(b"B", 10)
    app.on_line(b"C", 20)
    app.ui.link(True, 0, 100)
    t.eq([s for s, _ in app.outbox.due(100)], [S(1), S(2), S(3)])
    for sid, reason in ((S(1), "INTERNAL"), (S(2), "RATE_LIMITED"), (S(3), "UNKNOWN_DEVICE")):
        app.on_verdict(_verdict(sid, False, reason, "error"), 200)
    t.eq(len(app.outbox), 3, "nothing was decided: every scan stays")
    t.eq([d["reason"] for d in b.evs("transient")], ["INTERNAL", "RATE_LIMITED", "UNKNOWN_DEVICE"])
    t.eq(app.outbox.delay, 2 * app.cfg["retry_ms"], "the interval doubled once for the round")
    t.eq(app.outbox.due(300), [], "not hammered")
    t.eq(len(app.outbox.due(200 + app.outbox.delay)), 3, "resent after the back-off")
    retry = json.dumps({"v": 1, "sid": S(1), "ok": False, "reason": "BUSY", "retry": True}).encode()
    app.on_verdict(retry, 400)
    t.eq(len(app.outbox), 3, "any retry:true answer is transient")
    app.on_verdict(_verdict(S(1)), 500)
    t.eq(app.outbox.sids, [S(2), S(3)], "a final verdict removes the scan")
    t.eq(app.outbox.delay, app.cfg["retry_ms"], "and resets the back-off")
    app.on_verdict(_verdict(S(2), False, "SID_REUSED", "error"), 600)
    t.eq(app.outbox.sids, [S(3)], "SID_REUSED is final")
    t.eq([d["sid"] for d in b.evs("sid_reused")], [S(2)])
    t.eq(json.loads(app.status_payload())["reused"], 1)


def test_hole20_transient_answer_on_screen_is_shown_and_kept():
    """Hole 20: the scan on screen answered INTERNAL shows the gateway's lines and stays queued; its
    later OK does not open (the screen moved on), but a rescan rejoins it and gets that OK."""
    for rescan in (False, True):
        app, b = _app(dedupe_ms=0)
        app.ui.link(True, 0, 0)
        app.on_line(b"GATE-1", 0)
        app.on_verdict(_verdict(S(1), False, "INTERNAL", "error"), 10)
        t.eq((app.ui.state, app.ui.l1, len(app.outbox)), (U.ERROR, "L1", 1))
        if rescan:
            app.on_line(b"GATE-1", 6000)
            t.eq((app.outbox.sids, app.ui.state), ([S(1)], U.CHECKING), "the rescan rejoins the kept scan")
        app.on_verdict(_verdict(S(1)), 6100)
        t.eq(app.relays.items, [1] if rescan else [], "opens only for the scan on screen")
        if not rescan:
            app.on_line(b"GATE-1", 7000)
            t.eq(app.outbox.sids, [S(1)], "the OK that came late is collected by the rescan")
            app.on_verdict(_verdict(S(1)), 7100)
            t.eq(app.relays.items, [1])


def test_hole13_rescan_after_a_late_ok_collects_it_once():
    """Hole 13 with hole 19: the OK of a scan that showed NO ANSWER opens nothing when it comes; the
    holder's rescan puts that same scan (sid, payload) back, and the gateway's stored OK opens the gate
    for it, once. A scan queued offline is never collected this way."""
    app, b = _app(dedupe_ms=0)
    app.ui.link(True, 0, 0)
    app.on_line(b"GATE-1", 0)
    sid, payload = app.outbox.due(0)[0]
    _no_answer(app)
    app.on_verdict(_verdict(sid), 20000)
    t.eq((app.relays.items, len(app.outbox), app.late), ([], 0, 1), "late: logged, counted, not acted on")
    app.on_line(b"GATE-1", 30000)
    t.eq(app.outbox.due(30000), [(sid, payload)], "the same scan again, at once")
    t.eq((app.ui.state, app.ui.waiting), (U.CHECKING, sid))
    app.on_verdict(_verdict(sid), 30100)  # the gateway's stored verdict for that sid
    t.eq(app.relays.items, [1], "the holder on screen passes")
    app.on_line(b"GATE-1", 40000)
    t.eq(app.outbox.sids, [S(2)], "collected once only: the next rescan is a new scan")
    # Offline-queued: its OK after the upload is never collected by a rescan.
    app2, b2 = _app(dedupe_ms=0)
    app2.on_line(b"GATE-2", 0)
    app2.ui.link(True, 0, 10)
    app2.on_verdict(_verdict(S(1)), 20)
    app2.on_line(b"GATE-2", 5000)
    t.eq(app2.outbox.sids, [S(2)], "a new scan")
    t.eq(app2.relays.items, [])


def test_clock_comes_from_the_gateways_presence():
    app, b = _app()
    b.clock = 0  # never set (no NTP on the device)
    app.on_gateway(b'{"v":1,"state":"online","t":1795392000}')
    t.eq((b.clock, app.gw_up), (1795392000, True), "set from the presence message")
    app.on_gateway(b'{"v":1,"state":"online","t":1795391940}')
    t.eq(b.clock, 1795392000, "a retained copy up to 60 s old never moves a set clock back")
    app.on_gateway(b'{"v":1,"state":"online","t":1795395600}')
    t.eq(b.clock, 1795395600, "a clock an hour off is corrected")
    app.on_gateway(b'{"v":1,"state":"online","t":12}')
    t.eq(b.clock, 1795395600, "an unset gateway clock is ignored")
    app.on_gateway(b'{"v":1,"state":"offline"}')
    t.eq(app.gw_up, False)
    t.eq([d["set"] for d in b.evs("clock")], [1795392000, 1795395600])
    app.on_line(b"HXDEMO-1", 10)
    t.eq(json.loads(app.outbox.due(10)[0][1])["at"], 1795395600, "scans carry the gateway's time")


def test_display_ticks_allocate_nothing_while_the_screen_is_unchanged():
    import asyncio
    import gc

    from hx import outputs

    app, b = _app()
    frames = []

    class FB:
        def __getattr__(self, name):
            return lambda *a, **k: None

        def show(self):
            frames.append(1)
            return len(frames)

    b.display = lambda: FB()
    app.ui.booted(0)

    async def go():
        task = asyncio.create_task(outputs.display(b, app.ui, "G1", app.link, app.apply, app.redraw))
        await asyncio.sleep_ms(150)  # first frame drawn, the screen settles
        gc.collect()
        gc.disable()
        before = gc.mem_alloc()
        shown = len(frames)
        await asyncio.sleep_ms(400)  # ~4 UI ticks and ~20 looks at `redraw`
        used = gc.mem_alloc() - before
        gc.enable()
        app.ui.failure("X", "Y", 0)
        app.redraw.set()
        await asyncio.sleep_ms(40)
        task.cancel()
        return used, len(frames) - shown

    used, drawn = asyncio.run(go())
    t.eq(used, 0, "quiet display ticks allocate nothing")
    t.eq(drawn, 1, "a change is drawn at once")
