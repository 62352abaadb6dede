# The scanner app: wires pure modules, drivers and the board into supervised asyncio tasks.
import asyncio
import gc
import sys
import time

import hx.ui as U
from hx import VERSION, outputs, protocol, store
from hx.codes import CodeError, Dedupe, parse
from hx.gm65 import MODE_COMMAND, MODE_CONTINUOUS, Scanner
from hx.mqtt import MQTTClient
from hx.outbox import Outbox, OutboxFull
from hx.queue import DROP_OLDEST, REJECT_NEW, Queue


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

    def __init__(self, board, cfg, boot):
        self.board = board
        self.cfg = cfg
        self.boot = boot
        self.seq = 0
        self.t0 = time.ticks_ms()
        dev = cfg["device"]
        self.topic_scan = protocol.topic(dev, "scan")
        self.topic_verdict = protocol.topic(dev, "verdict")
        self.topic_status = protocol.topic(dev, "status")
        self.topic_cmd = protocol.topic(dev, "cmd")
        self.ui = U.UI(cfg["mode"], cfg["verdict_timeout_ms"], cfg["result_ms"], self.t0)
        self.dedupe = Dedupe(cfg["dedupe_ms"])
        self.outbox = Outbox(store.DirStore(board.flash + "/outbox"), cfg["outbox_max"], cfg["inflight"],
                             cfg["retry_ms"])
        self.inbox = Queue(8, DROP_OLDEST)
        self.sounds = Queue(2, DROP_OLDEST)
        self.relays = Queue(4, REJECT_NEW)
        self.kick = asyncio.Event()  # outbox changed / link came up: uplink looks again
        self.redraw = asyncio.Event()
        self.status_now = asyncio.Event()
        self.heap_peak = 0
        self.crashes = 0
        m = cfg["mqtt"]
        self.mqtt = MQTTClient(dev, m["host"], m["port"], m["user"], m["password"], m["keepalive"],
                               will=(self.topic_status, protocol.OFFLINE, True), on_message=self.on_message,
                               on_connect=self.on_connect, log=board.event, wait_net=board.wait_net,
                               retry_ms=cfg["retry_ms"])
        # Subscriptions live in the client: it (re)sends them with every CONNECT, no task needed.
        self.mqtt.subs[self.topic_verdict] = 1
        self.mqtt.subs[self.topic_cmd] = 1

    # ---- glue between pure core and effects ----
    def apply(self, fx):
        for kind, arg in fx:
            if kind == "sound":
                self.sounds.put(arg)
            elif kind == "relay" and not self.relays.put(arg):
                self.board.event("relay", {"error": "queue full, pulse dropped", "dropped": self.relays.dropped})
        self.redraw.set()

    def on_message(self, topic, payload):
        if not self.inbox.put((topic, payload)):
            self.board.event("inbox", {"dropped": self.inbox.dropped})

    def on_connect(self):
        self.outbox.unsent()
        self.kick.set()
        self.status_now.set()
        self.redraw.set()

    def on_line(self, raw, now):
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
        qty = self.ui.qty if self.cfg["mode"] == "handheld" else 1
        seq = self.seq + 1
        sid = protocol.make_sid(self.boot, seq)
        payload = protocol.encode_scan(sid, code, qty, self.cfg["dir"], self.board.unix_time())
        try:
            self.outbox.add(self.boot, seq, payload)
        except OutboxFull:
            self.dedupe.forget(code)
            self.board.event("outbox_full", {"code": code, "count": self.outbox.full_count})
            self.apply(self.ui.outbox_full(now))
            return
        except OSError as e:
            self.dedupe.forget(code)
            self.board.event("flash_error", {"error": repr(e)})
            self.apply(self.ui.failure("FLASH ERROR", "scan not taken", now))
            return
        self.seq = seq
        self.ui.qty = 1
        self.board.event("scan", {"sid": sid, "code": code, "qty": qty, "outbox": len(self.outbox)})
        self.apply(self.ui.scan_queued(sid, code, len(self.outbox), now))
        self.kick.set()

    def on_verdict(self, payload, now):
        try:
            v = protocol.decode_verdict(payload)
        except protocol.ProtocolError as e:
            self.board.event("bad_verdict", {"why": e.args[0]})
            return
        if not self.outbox.ack(v["sid"]):
            self.board.event("stale_verdict", {"sid": v["sid"]})
            return
        shown = self.ui.waiting == v["sid"]
        self.board.event("verdict", {"sid": v["sid"], "ok": v["ok"], "reason": v["reason"], "shown": shown})
        self.apply(self.ui.verdict(v, now))
        self.ui.outbox_len(len(self.outbox))
        self.kick.set()

    def on_command(self, payload, now):
        try:
            cmd, args = protocol.decode_command(payload)
        except protocol.ProtocolError as e:
            self.board.event("cmd", {"error": e.args[0]})
            return
        self.board.event("cmd", {"cmd": cmd})
        if cmd == "beep":
            self.apply([("sound", args.get("sound", "ok"))])
        elif cmd == "show":
            self.apply(self.ui.show(args["l1"], args["l2"], args["secs"], now))
        elif cmd == "status":
            self.status_now.set()
        elif cmd == "reboot":
            self.board.reboot()
        else:
            self.board.event("cmd", {"ignored": cmd})

    def status_payload(self):
        ip, rssi = self.board.net_info()
        return protocol.encode_status(VERSION, self.board.name, ip, rssi, gc.mem_free(), len(self.outbox),
                                      time.ticks_diff(time.ticks_ms(), self.t0) // 1000, self.cfg["mode"])

    # ---- tasks ----
    async def t_scanner(self):
        streams = self.board.scanner()
        if streams is None:
            self.board.event("scanner", {"error": "no scanner UART"})
            while True:
                await asyncio.sleep_ms(60000)
        sc = Scanner(streams[0], streams[1], streams[2], self.board.event)
        mode = MODE_COMMAND if self.cfg["scanner_mode"] == "command" else MODE_CONTINUOUS
        await sc.start(mode, self.cfg["same_code_s"])
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
            if self.mqtt.connected:
                for sid, payload in self.outbox.due(time.ticks_ms()):
                    ok = await self.mqtt.publish(self.topic_scan, payload, 1, False, self.cfg["retry_ms"])
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

    async def t_health(self):
        last = None
        while True:
            now = time.ticks_ms()
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
            await asyncio.sleep_ms(min(500 * restarts, 10000))

    async def run(self, extra=()):
        self.board.event("start", {"fw": VERSION, "boot": self.boot, "device": self.cfg["device"],
                                   "mode": self.cfg["mode"], "outbox": len(self.outbox)})
        self.apply(self.ui.booted(time.ticks_ms()))
        tasks = [("display", lambda: outputs.display(self)), ("sound", lambda: outputs.sound(self)),
                 ("relay", lambda: outputs.relay(self)), ("buttons", lambda: outputs.buttons(self)),
                 ("scanner", self.t_scanner), ("mqtt", self.t_mqtt),
                 ("uplink", self.t_uplink), ("inbox", self.t_inbox),
                 ("health", self.t_health)]
        for name, fn in list(extra) + tasks:
            asyncio.create_task(self.supervise(name, fn))
        while True:
            await asyncio.sleep_ms(3600000)
