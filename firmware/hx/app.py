# The scanner app: wires pure modules, drivers and the board into supervised asyncio tasks.
import asyncio
import gc
import json
import sys
import time
from micropython import const

import hx.ui as U
from hx import VERSION, health, lazy, outputs, protocol, store
from hx.codes import CodeError, Dedupe, parse
from hx.gm65 import MODE_COMMAND, MODE_CONTINUOUS, Scanner
from hx.mqtt import MQTTClient, tls_context
from hx.outbox import Outbox, OutboxFull
from hx.queue import DROP_OLDEST, REJECT_NEW, Queue

_KEEP = const(4)  # scans remembered for a rescan after NO ANSWER (each list below is this short)
_LATE_OK_MS = const(120000)  # a late OK is kept this long for a rescan to collect it


class App:
    """Tasks and their queues (overflow policy in brackets):

    scanner  -> outbox (flash) + ui           direct call: a scan is durable before it is shown
    mqtt     -> inbox  Queue(8)  [drop oldest, counted: a lost verdict is re-fetched by retransmit]
    inbox    -> ui + sounds Queue(2) [drop oldest: the newest sound is the one that matters]
             -> relay  Queue(4)  [reject new, counted + logged: never open the gate twice by mistake]
    uplink   <- outbox (resend until verdict), kicked by an Event
    display  <- ui.version (latest state wins), also drives the ui timeouts
    health   -> status (retained) on connect + every heartbeat; peak heap to the event log
    buttons  -> ui
    """

    def __init__(self, board, cfg, boot, iid):
        self.board = board
        self.cfg = cfg
        self.boot = boot
        self.iid = iid  # this install's random id (hx.store.boot_ids): part of every scan id
        self.seq = 0
        self.late = 0  # final verdicts that came when their scan was no longer on screen (not acted on)
        self.reused = 0  # SID_REUSED refusals: the gateway has another request under one of our ids
        self.annuls = []  # sids of queued annuls (few): their verdicts are not late redemptions
        self.gave_up = []  # sids whose CHECKING screen timed out (NO ANSWER): the holder was told to rescan
        self.late_ok = []  # [(code, name, payload, when)]: late OKs of those, for the holder's rescan
        self.t0 = time.ticks_ms()
        dev = cfg["device"]
        self.topic_scan = protocol.topic(dev, "scan")
        self.topic_verdict = protocol.topic(dev, "verdict")
        self.topic_status = protocol.topic(dev, "status")
        self.topic_cmd = protocol.topic(dev, "cmd")
        self.topic_ota = protocol.topic(dev, "ota")
        self.ota = None  # the update report in the status (hx/ota.py; hx/start.py after a switch)
        self.ota_session = None  # an update being downloaded (hx.ota.Session), loaded only then
        turn = cfg["turn_ms"] if cfg["mode"] == "turnstile" and cfg["turn_sensor"] else 0
        self.ui = U.UI(cfg["mode"], cfg["verdict_timeout_ms"], cfg["result_ms"], self.t0, cfg["pick_ms"], turn)
        # A check / login / logout changes nothing durable: it is published once, outside the outbox
        # (a PIN must never sit on flash); if it is lost the holder sees NO ANSWER and tries again.
        self.direct = None  # payload waiting for the uplink task
        self.direct_sid = None  # sid of the last one, whose verdict is not an outbox entry
        self.dedupe = Dedupe(cfg["dedupe_ms"])
        # The board caps the queue to what its RAM can index (hx/boards: outbox_cap).
        self.outbox = Outbox(store.DirStore(board.flash + "/outbox"),
                             min(cfg["outbox_max"], getattr(board, "outbox_cap", 1000)), cfg["inflight"],
                             cfg["retry_ms"])
        self.inbox = Queue(8, DROP_OLDEST)
        self.sounds = Queue(2, DROP_OLDEST)
        self.relays = Queue(4, REJECT_NEW)
        self.kick = asyncio.Event()  # outbox changed / link came up: uplink looks again
        self.redraw = asyncio.Event()
        self.status_now = asyncio.Event()
        self.scanner_set = asyncio.Event()  # the scanner's one-off set-up code is done (and unloaded)
        self.heap_peak = 0
        self.crashes = 0
        self.crash_log = health.Crashes()
        self.ui_at = self.drain_at = self.t0  # health marks (ticks): display tick, outbox empty / verdict
        self.stable = False  # this boot has run long enough (or got online) not to count as a boot loop
        m = cfg["mqtt"]
        self.mqtt = MQTTClient(dev, m["host"], m["port"], m["user"], m["password"], m["keepalive"],
                               will=(self.topic_status, protocol.OFFLINE, True), on_message=self.on_message,
                               on_connect=self.on_connect, log=board.event, net_up=board.net_up,
                               retry_ms=cfg["retry_ms"], addr=m.get("addr"), idle=self.link_idle,
                               ssl=tls_context(m["cadata"]) if m.get("cadata") else None)
        # Subscriptions live in the client: it (re)sends them with every CONNECT, no task needed.
        self.mqtt.subs[self.topic_verdict] = 1
        self.mqtt.subs[self.topic_cmd] = 1
        if cfg["ota_key"]:
            self.mqtt.subs[self.topic_ota] = 1
        self.mqtt.subs[protocol.GATEWAY_TOPIC] = 1
        self.gw_up = True  # until the gateway's retained status says otherwise
        self.cam = None  # hx.camera.CameraTask on a camera board (set up in run)

    # ---- glue between pure core and effects ----
    def apply(self, fx):
        for kind, arg in fx:
            if kind == "sound":
                self.sounds.put(arg)
            elif kind == "relay":
                if not self.relays.put(arg):
                    self.board.event("relay", {"error": "queue full, pulse dropped", "dropped": self.relays.dropped})
            else:
                self.act(kind, arg, time.ticks_ms())
        self.redraw.set()

    def act(self, kind, arg, now):
        """The UI's requests: redeem what was picked, sign a verifier in/out, annul an OK not passed."""
        if kind == "redeem":
            code, qty, amt = arg
            sid = self.enqueue(code, qty, now, amt=amt)
            if sid:
                self.apply(self.ui.scan_queued(sid, code, len(self.outbox), now))
        elif kind == "annul":
            sid = self.enqueue(None, 1, now, "annul", ref=arg)
            self.board.event("annul", {"ref": arg, "sid": sid})
            if sid:
                self.annuls = self.annuls[-3:] + [sid]
                self.apply(self.ui.annul_queued(sid, len(self.outbox), now))
        elif kind == "look" and self.cam is not None:
            self.cam.press(now)
        elif kind == "gave_up":
            self.gave_up = self.gave_up[1 - _KEEP:] + [arg]
        elif kind == "login" or kind == "logout":
            if not self.send_direct(kind, None, now, pin=arg):
                self.apply(self.ui.failure("NO LINK", "try again", now))
            else:
                self.ui.sent(self.direct_sid, kind, "SIGNING IN" if kind == "login" else "SIGNING OUT", "", now)

    def link(self, now):
        """Hand the UI the status bar's link state (online = broker connected and the gateway up, and
        the queue length). Called by the display task every tick: also the UI's heartbeat for the
        watchdog."""
        self.ui_at = now
        self.ui.link(self.mqtt.connected and self.gw_up, len(self.outbox), now)

    def on_turned(self):
        outputs.turned(self.board, self.ui, time.ticks_ms())

    def healthy(self):
        """None while healthy, else why not: the board's watchdog is fed only while this is None."""
        return health.problem(time.ticks_ms(), self.ui_at, self.mqtt.progress, self.drain_at,
                              self.mqtt.connected, self.gw_up, len(self.outbox))

    def next_sid(self):
        self.seq += 1
        return self.seq, protocol.make_sid(self.iid, self.boot, self.seq)

    def send_direct(self, op, code, now, pin=None):
        """Queue a check/login/logout for one publish (not durable: it changes nothing)."""
        if not self.ui.online:
            return False
        _, sid = self.next_sid()
        self.direct = protocol.encode_scan(sid, code, 1, self.cfg["dir"], self.board.unix_time(), op, pin=pin)
        self.direct_sid = sid
        self.board.event("request", {"sid": sid, "op": op})  # never the PIN
        self.kick.set()
        return True

    def enqueue(self, code, qty, now, op=None, amt=None, ref=None):
        """Make a scan durable in the outbox; its sid, or None when refused (shown and logged)."""
        seq = self.seq + 1
        sid = protocol.make_sid(self.iid, self.boot, seq)
        try:
            payload = protocol.encode_scan(sid, code, qty, self.cfg["dir"], self.board.unix_time(), op, amt, ref)
        except protocol.ProtocolError as e:
            # Nothing the contract refuses is ever queued (it would only come back MALFORMED).
            self.board.event("bad_scan", {"why": e.args[0]})
            self.apply(self.ui.failure("CANNOT SEND", e.args[0][:16], now))
            return None
        try:
            self.outbox.add(self.iid, self.boot, seq, payload)
        except OutboxFull:
            if code:
                self.dedupe.forget(code)
            self.board.event("outbox_full", {"code": code, "count": self.outbox.full_count})
            self.apply(self.ui.outbox_full(now))
            return None
        except OSError as e:
            if code:
                self.dedupe.forget(code)
            self.board.event("flash_error", {"error": repr(e)})
            self.apply(self.ui.failure("FLASH ERROR", "scan not taken", now))
            return None
        self.seq = seq
        self.board.event("scan", {"sid": sid, "code": code, "qty": qty, "amt": amt, "op": op or "redeem",
                                  "outbox": len(self.outbox)})
        self.kick.set()
        return sid

    def link_idle(self, now=None):
        """Nothing on screen waits for an answer (a scan, a check or sign-in, a camera attempt; UI.awaits
        also checks the clock): the MQTT client may make its one blocking DNS lookup now (only with the
        link down; see MQTTClient._lookup)."""
        w = self.ui.waiting
        return w is None or not self.ui.awaits(w, time.ticks_ms() if now is None else now)

    def on_message(self, topic, payload):
        if not self.inbox.put((topic, payload)):
            self.board.event("inbox", {"dropped": self.inbox.dropped})

    def on_connect(self):
        self.outbox.unsent()
        self.kick.set()
        self.status_now.set()
        self.redraw.set()

    def on_line(self, raw, now):
        if not self.ui.online and self.mqtt.connected and self.gw_up:
            self.link(now)  # the link came up since the display's last tick: this scan is online
        if raw is None:
            self.board.event("bad_code", {"why": "line too long"})
            self.apply(self.ui.bad_code(now))
            return
        try:
            code = parse(raw)
        except CodeError as e:
            if e.args[0] != "empty":
                self.board.event("bad_code", {"why": e.args[0], "len": len(raw)})
                self.apply(self.ui.bad_code(now))
            return
        if self.dedupe.is_repeat(code, now):
            self.board.event("dedupe", {"code": code})
            return
        if self.rescan(code, now):
            return
        if self.cfg["mode"] == "handheld":
            # With "pick" on and online: ask first, let the verifier pick, then redeem. Offline nothing
            # can be asked: the scan queues as a plain redeem of the preselected quantity (1 unless up
            # was pressed at READY).
            if self.cfg["pick"] and self.send_direct("check", code, now):
                self.apply(self.ui.sent(self.direct_sid, "check", "CHECKING...", code, now))
                return
            qty = self.ui.qty
        else:
            qty = 1
        sid = self.enqueue(code, qty, now)
        if sid:
            self.ui.qty = 1
            self.apply(self.ui.scan_queued(sid, code, len(self.outbox), now))

    def rescan(self, code, now):
        """A rescan of a code whose scan still waits in the outbox (no final verdict yet, e.g. after NO
        ANSWER) rejoins that scan: same sid, same payload, published again at once, shown as CHECKING.
        A new scan would be a second redemption (ALREADY_USED for a unit the holder never used, or
        two units gone). True when it did."""
        handheld = self.cfg["mode"] == "handheld"
        # A handheld that checks first would pick a quantity again: it rejoins the queued redeem of
        # any quantity. Otherwise the rescan must ask for exactly what the queued scan asks.
        qty = None if handheld and self.cfg["pick"] else (self.ui.qty if handheld else 1)
        direction = self.cfg["dir"]

        def same(obj):
            if obj.get("op", "redeem") != "redeem" or obj.get("dir", "in") != direction:
                return False
            return qty is None or (obj.get("qty", 1) == qty and obj.get("amt") is None)

        try:
            # Only a scan the holder saw on screen (still checking, or given up on) is theirs to rejoin:
            # one queued offline may have been let in by hand already — a rescan is a new scan. So only
            # those are looked up (no flash reads for the rest of a long queue).
            seen = self.gave_up + ([self.ui.waiting] if self.ui.waiting else [])
            sid = self.outbox.find(code, same, seen) if seen else None
            sid = sid or self.collect_late_ok(code, same, now)
        except MemoryError:
            sid = None
        if sid is None:
            return False
        self.outbox.rush(sid)
        self.board.event("rescan", {"sid": sid, "code": code, "outbox": len(self.outbox)})
        self.ui.qty = 1
        self.apply(self.ui.scan_queued(sid, code, len(self.outbox), now))
        self.kick.set()
        return True

    def collect_late_ok(self, code, same, now):
        """The holder told NO ANSWER rescans after the OK came (too late to open): put that very scan
        back in the outbox (same sid, same payload), so the gateway's stored OK answers the rescan on
        screen. Once only, and only for scans the holder saw time out: an OK for a scan queued offline
        is never collected (someone may have been let in by hand already)."""
        for e in self.late_ok:
            if e[0] == code and time.ticks_diff(now, e[3]) < _LATE_OK_MS:
                self.late_ok.remove(e)
                try:
                    obj = json.loads(e[2])
                except ValueError:
                    return None
                if not same(obj):
                    return None
                try:
                    return self.outbox.restore(e[1], e[2])
                except (OutboxFull, OSError):
                    return None
        return None

    def keep_late_ok(self, sid, now):
        # Read before the ack removes it from flash: a rescan may want it back.
        entry = self.outbox.entry(sid)
        if entry is None:
            return
        try:
            code = json.loads(entry[1]).get("code")
        except (ValueError, AttributeError):
            return
        if isinstance(code, str):
            self.late_ok = self.late_ok[1 - _KEEP:] + [(code, entry[0], entry[1], now)]

    def on_verdict(self, payload, now):
        try:
            v = protocol.decode_verdict(payload)
        except protocol.ProtocolError as e:
            self.board.event("bad_verdict", {"why": e.args[0]})
            return
        sid = v["sid"]
        self.drain_at = now  # the gateway answers: the outbox is not stuck
        if self.cam is not None and self.cam.owns(sid):
            self.cam.on_verdict(v, now)
            return
        direct = sid == self.direct_sid
        if direct:
            # A check / sign-in answer: nothing durable was asked, a transient one is simply shown.
            self.direct_sid = None
            self.direct = None
        elif v["retry"]:
            # Transient: the gateway decided nothing. The scan stays queued and is resent with back-off.
            if not self.outbox.retry(sid, now):
                self.board.event("stale_verdict", {"sid": sid})
                return
            self.board.event("transient", {"sid": sid, "reason": v["reason"], "retry_ms": self.outbox.delay})
        else:
            if v["ok"] and sid in self.gave_up and not self.ui.awaits(sid, now):
                self.keep_late_ok(sid, now)
            if not self.outbox.ack(sid):
                self.board.event("stale_verdict", {"sid": sid})
                return
        shown = self.ui.awaits(sid, now)
        if sid in self.gave_up and not v["retry"]:
            self.gave_up.remove(sid)
        elif shown and v["retry"] and not direct:
            # "try again" on screen for a scan that stays queued: like NO ANSWER, its final OK may
            # come when the holder has stepped back, and their rescan collects it.
            self.act("gave_up", sid, now)
        self.board.event("verdict", {"sid": sid, "ok": v["ok"], "reason": v["reason"], "shown": shown})
        if v["reason"] == "SID_REUSED":
            # Final: the gateway holds a different request under this id (nothing was redeemed).
            self.reused += 1
            self.board.event("sid_reused", {"sid": sid, "count": self.reused})
        if shown:
            self.apply(self.ui.verdict(v, now))
        elif sid in self.annuls:
            self.annuls.remove(sid)
        elif not direct and not v["retry"]:
            # Too late for the screen (NO ANSWER, queued offline, moved on): never a relay pulse, never
            # an OK sound for whoever stands there now.
            self.late += 1
            self.board.event("late_verdict", {"sid": sid, "ok": v["ok"], "reason": v["reason"],
                                              "count": self.late})
        self.ui.outbox_len(len(self.outbox))
        self.kick.set()

    def on_command(self, payload, now):
        """Commands are rare (provisioning, support): their code is loaded for each one and unloaded
        again, so it takes no heap the rest of the time."""
        lazy.run("hx.commands", "handle", payload, now, self.board, self.ui, self.apply, self.status_now.set)

    def status_payload(self):
        ip, rssi = self.board.net_info()
        return protocol.encode_status(VERSION, self.board.name, ip, rssi, gc.mem_free(), len(self.outbox),
                                      time.ticks_diff(time.ticks_ms(), self.t0) // 1000, self.cfg["mode"],
                                      self.late, self.reused, self.ota)

    # ---- tasks ----
    async def t_scanner(self):
        streams = self.board.scanner()
        if streams is None:
            self.scanner_set.set()
            self.board.event("scanner", {"error": "no scanner UART"})
            while True:
                await asyncio.sleep_ms(60000)
        sc = Scanner(streams[0], streams[1], streams[2], self.board.event)
        mode = MODE_COMMAND if self.cfg["scanner_mode"] == "command" else MODE_CONTINUOUS
        try:
            await sc.start(mode, self.cfg["same_code_s"])
        finally:
            self.scanner_set.set()
        while True:
            if mode == MODE_COMMAND:
                # Command-trigger modules read only when asked: ask again whenever a second passes quietly.
                try:
                    raw = await asyncio.wait_for_ms(sc.readline(), 1000)
                except asyncio.TimeoutError:
                    await sc.trigger()
                    continue
            else:
                raw = await sc.readline()
            self.on_line(raw, time.ticks_ms())

    async def t_uplink(self):
        while True:
            if self.direct and self.ui.waiting != self.direct_sid:
                self.direct = None  # the screen gave up (NO ANSWER) or moved on: never sign in late
            if self.mqtt.connected and self.direct:
                payload = self.direct
                self.direct = None  # one attempt: a lost check shows NO ANSWER, the holder rescans
                ok = await self.mqtt.publish(self.topic_scan, payload, 1, False, self.cfg["retry_ms"])
                self.board.event("publish", {"sid": self.direct_sid, "acked": ok})
            if self.mqtt.connected:
                for sid, payload in self.outbox.due(time.ticks_ms()):
                    # key=sid: a resend of this scan is a DUP of the same packet, not a new publish.
                    ok = await self.mqtt.publish(self.topic_scan, payload, 1, False, self.cfg["retry_ms"], sid)
                    self.board.event("publish", {"sid": sid, "acked": ok})
                    if not ok:
                        break
            wait = self.outbox.next_due_ms(time.ticks_ms())
            self.kick.clear()
            try:
                await asyncio.wait_for_ms(self.kick.wait(), 1000 if wait is None else max(20, min(wait, 1000)))
            except asyncio.TimeoutError:
                pass

    async def t_inbox(self):
        while True:
            topic, payload = await self.inbox.get()
            now = time.ticks_ms()
            if topic == self.topic_verdict:
                self.on_verdict(payload, now)
            elif topic == self.topic_cmd:
                self.on_command(payload, now)
            elif self.cam is not None and topic == self.cam.topic_hint:
                self.cam.on_hint(payload, now)
            elif topic == protocol.GATEWAY_TOPIC:
                self.on_gateway(payload)
            elif topic == self.topic_ota:
                self.on_ota(payload)

    def on_ota(self, payload):
        """Update messages: an offer starts a session (hx/ota.py, loaded only for it), which takes the rest."""
        if self.ota_session is not None:
            self.ota_session.on_message(payload)
        elif self.cfg["ota_key"]:
            from hx import ota

            self.ota_session = ota.offered(self, payload)

    def on_gateway(self, payload):
        """The gateway's presence: up or down (OFFLINE on screen), and its clock (the device's time)."""
        up, gw_t = protocol.gateway_status(payload)
        if protocol.clock_needs(self.board.unix_time(), gw_t):
            self.board.set_time(gw_t)
            self.board.event("clock", {"set": gw_t})
        if up != self.gw_up:
            self.gw_up = up
            self.board.event("gateway", {"up": up})
            self.redraw.set()

    async def t_health(self):
        last = None
        while True:
            now = time.ticks_ms()
            if not len(self.outbox):
                self.drain_at = now
            if not self.stable and (self.mqtt.connected or time.ticks_diff(now, self.t0) >= health.STABLE_MS) \
                    and self.healthy() is None:
                self.stable = True
                store.boot_stable(self.board.flash)  # not a boot loop: the failed-boot count starts again
                if lazy.run("slots", "confirm", self.board.flash):
                    self.board.event("ota", {"state": "kept", "fw": VERSION})  # the update on trial made it
                    self.ota = {"state": "kept", "ver": VERSION}
                    self.status_now.set()
            due = last is None or time.ticks_diff(now, last) >= self.cfg["heartbeat_s"] * 1000
            if self.mqtt.connected and (self.status_now.is_set() or due):
                self.status_now.clear()
                last = now
                # Live heap = what survives a collection; its high-water mark is the RAM figure that
                # matters on the ESP32 (the rest is garbage the GC reclaims when it needs to).
                gc.collect()
                live = gc.mem_alloc()
                if live > self.heap_peak:
                    self.heap_peak = live
                ok = await self.mqtt.publish(self.topic_status, self.status_payload(), 1, True, self.cfg["retry_ms"])
                self.board.event("heap", {"live": live, "free": gc.mem_free(), "live_peak": self.heap_peak,
                                          "status_acked": ok, "outbox": len(self.outbox),
                                          "crashes": self.crashes})
            try:
                await asyncio.wait_for_ms(self.status_now.wait(), 1000)
            except asyncio.TimeoutError:
                pass

    async def t_mqtt(self):
        # Connect once the scanner set-up (< 1 s) is over and its code unloaded: the link's buffers and
        # that code then never take heap at the same time (the peak, not the sum, is what the ESP32
        # must fit). A scanner that hangs its set-up delays the link by 3 s at most.
        try:
            await asyncio.wait_for_ms(self.scanner_set.wait(), 3000)
        except asyncio.TimeoutError:
            pass
        await self.mqtt.run()

    async def supervise(self, name, fn):
        """Run one concern forever; a crash is logged and the task restarted after a short pause."""
        restarts = 0
        while True:
            try:
                await fn()
                why = "returned"
            except asyncio.CancelledError:
                raise
            except Exception as e:
                why = repr(e)
                sys.print_exception(e)
            restarts += 1
            self.crashes += 1
            self.board.event("crash", {"task": name, "error": why, "restarts": restarts})
            if self.crash_log.add(time.ticks_ms()):
                # Restarting forever would hide a wedged device: a reset starts it clean (and a loop
                # of those ends in safe mode, hx.rescue).
                self.board.event("crash_reset", {"crashes": health.CRASH_LIMIT, "window_ms": health.CRASH_WINDOW_MS})
                self.board.reboot()
            await asyncio.sleep_ms(min(500 * restarts, 10000))

    async def run(self, extra=()):
        self.board.event("start", {"fw": VERSION, "boot": self.boot, "iid": self.iid, "device": self.cfg["device"],
                                   "mode": self.cfg["mode"], "outbox": len(self.outbox),
                                   "stray": self.outbox.stray})
        self.apply(self.ui.booted(time.ticks_ms()))
        cam = self.board.camera(self.cfg["camera"]) if hasattr(self.board, "camera") else None
        if cam is not None:
            from hx.camera import CameraTask  # camera boards only: never loaded on a UART board

            self.cam = CameraTask(self, cam)
            self.mqtt.subs[self.cam.topic_hint] = 0
            self.ui.camera = self.cam.policy.trigger == "button"
            extra = list(extra) + [("camera", self.cam.run)]
        tasks = [("display", lambda: outputs.display(self.board, self.ui, self.cfg["gate"], self.link, self.apply,
                                                     self.redraw)),
                 ("sound", lambda: outputs.sound(self.board, self.sounds)),
                 ("relay", lambda: outputs.relay(self.board, self.relays, self.cfg["relay_ms"])),
                 ("buttons", lambda: outputs.buttons(self.board, self.ui, self.apply)),
                 ("scanner", self.t_scanner), ("mqtt", self.t_mqtt),
                 ("uplink", self.t_uplink), ("inbox", self.t_inbox),
                 ("health", self.t_health)]
        for name, fn in list(extra) + tasks:
            asyncio.create_task(self.supervise(name, fn))
        while True:
            await asyncio.sleep_ms(3600000)
