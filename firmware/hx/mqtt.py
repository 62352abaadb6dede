# Our own small asyncio MQTT 3.1.1 client (QoS 0/1, retained last will, keepalive, reconnect).
# Why not umqtt: micropython-lib's umqtt.simple/robust block the event loop on socket reads (a scan
# would wait for the network) and do not recover reliably from WiFi loss; no resilient asyncio client
# is installable from a package registry for MicroPython. So we keep a minimal one we can test.
import asyncio
import random
import socket
import struct
import time
from micropython import const

_CONNECT = const(0x10)
_CONNACK = const(0x20)
_PUBLISH = const(0x30)
_PUBACK = const(0x40)
_SUBSCRIBE = const(0x82)
_SUBACK = const(0x90)
_PINGREQ = const(0xC0)
_PINGRESP = const(0xD0)
_DISCONNECT = const(0xE0)
_DUP = const(0x08)


class MQTTError(Exception):
    pass


def _s(v):
    b = v.encode() if isinstance(v, str) else bytes(v)
    return struct.pack("!H", len(b)) + b


def _packet(first, body):
    n = len(body)
    hdr = bytearray((first,))
    while True:
        d = n & 0x7F
        n >>= 7
        hdr.append(d | 0x80 if n else d)
        if not n:
            break
    return bytes(hdr) + body


async def read_packet(r):
    """(first byte, body) of the next packet; EOFError/OSError when the connection ends."""
    first = (await r.readexactly(1))[0]
    n = 0
    shift = 0
    while True:
        b = (await r.readexactly(1))[0]
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
        if shift > 21:
            raise MQTTError("bad remaining length")
    return first, ((await r.readexactly(n)) if n else b"")


class MQTTClient:
    """run() keeps one connection up forever; publish() returns once the broker has the message.

    - clean session; on every (re)connect all subscriptions are renewed and in-flight QoS 1 publishes
      are sent again with DUP set; a publish also retransmits after `retry_ms` without PUBACK.
    - liveness: PINGREQ every keepalive/2; no packet from the broker for 1.5 x keepalive = dead link
      (what a WiFi drop looks like: the socket itself may never report an error).
    - back-off between failed connects doubles from backoff_ms[0] to backoff_ms[1], with jitter.
    """

    def __init__(self, client_id, host, port=1883, user=None, password=None, keepalive=30, will=None,
                 on_message=None, on_connect=None, log=None, net_up=None, backoff_ms=(500, 30000),
                 retry_ms=5000, timeout_ms=5000):
        self.client_id = client_id
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.keepalive = keepalive
        self.will = will  # (topic, payload, retain) published by the broker at QoS 1 if we vanish
        self.on_message = on_message
        self.on_connect = on_connect
        self.log = log or (lambda *a: None)
        self.net_up = net_up  # () -> bool: the network is up (WiFi station connected); None = always
        self.backoff = backoff_ms
        self.retry_ms = retry_ms
        self.timeout_ms = timeout_ms
        self.subs = {}
        self.pending = {}  # packet id -> [Event, acked, result]
        self.pid = 0
        self.connected = False
        self.up = asyncio.Event()
        self._dead = asyncio.Event()
        self._lock = asyncio.Lock()
        self._r = None
        self._w = None
        self._stop = False
        self.last_rx = 0
        self.connects = 0
        self.progress = time.ticks_ms()  # last sign of life of this task (for the app's watchdog rule)

    def _next_pid(self):
        while True:
            self.pid = self.pid % 65535 + 1
            if self.pid not in self.pending:
                return self.pid

    async def _send(self, pkt):
        w = self._w
        if w is None:
            raise OSError(-1)
        async with self._lock:  # one writer at a time: concurrent drains on one socket are not allowed
            w.write(pkt)
            await w.drain()

    def _drop(self, why):
        if self.connected:
            self.log("mqtt", {"state": "down", "why": why})
        self.connected = False
        self.up.clear()
        self._dead.set()
        w, self._w, self._r = self._w, None, None
        if w is not None:
            try:
                w.close()
            except Exception:
                pass

    async def run(self):
        delay = self.backoff[0]
        while not self._stop:
            while self.net_up is not None and not self.net_up():
                self.progress = time.ticks_ms()
                await asyncio.sleep_ms(250)
            self.progress = time.ticks_ms()
            try:
                await self._connect()
            except Exception as e:  # OSError, EOFError, TimeoutError, MQTTError: all mean "try again"
                self._drop("connect: %r" % (e,))
                self.log("mqtt", {"state": "retry", "in_ms": delay, "why": repr(e)})
                await asyncio.sleep_ms(delay + random.getrandbits(8))
                delay = min(delay * 2, self.backoff[1])
                continue
            delay = self.backoff[0]
            await self._session()
            if not self._stop:
                await asyncio.sleep_ms(self.backoff[0])

    async def _connect(self):
        self._dead = asyncio.Event()
        r, w = await asyncio.wait_for_ms(asyncio.open_connection(self.host, self.port), self.timeout_ms)
        self._r, self._w = r, w
        sock = getattr(w, "s", None)
        if sock is not None:
            try:
                # Nagle would hold our small packets back ~40 ms; not every port lets us switch it off.
                sock.setsockopt(getattr(socket, "IPPROTO_TCP", 6), getattr(socket, "TCP_NODELAY", 1), 1)
            except Exception:
                pass
        flags = 0x02
        tail = _s(self.client_id)
        if self.will:
            flags |= 0x04 | (1 << 3) | (0x20 if self.will[2] else 0)
            tail += _s(self.will[0]) + _s(self.will[1])
        if self.user is not None:
            flags |= 0x80
            tail += _s(self.user)
            if self.password is not None:
                flags |= 0x40
                tail += _s(self.password)
        body = _s("MQTT") + bytes((4, flags)) + struct.pack("!H", self.keepalive) + tail
        await self._send(_packet(_CONNECT, body))
        first, data = await asyncio.wait_for_ms(read_packet(r), self.timeout_ms)
        if first != _CONNACK or len(data) < 2:
            raise MQTTError("no CONNACK")
        if data[1]:
            raise MQTTError("connection refused, code %d" % data[1])
        self.connected = True
        self.connects += 1
        self.last_rx = time.ticks_ms()
        self.log("mqtt", {"state": "up", "broker": "%s:%d" % (self.host, self.port)})
        if self.subs:
            body = struct.pack("!H", self._next_pid())
            for t in self.subs:
                body += _s(t) + bytes((self.subs[t],))
            await self._send(_packet(_SUBSCRIBE, body))
        self.up.set()
        for p in self.pending.values():
            p[0].set()  # wake in-flight publishes: they resend now on the new connection
        if self.on_connect:
            self.on_connect()

    async def _session(self):
        reader = asyncio.create_task(self._reader())
        pinger = asyncio.create_task(self._pinger())
        await self._dead.wait()
        reader.cancel()
        pinger.cancel()

    async def _reader(self):
        try:
            while True:
                first, data = await read_packet(self._r)
                self.last_rx = self.progress = time.ticks_ms()
                await self._handle(first, data)
        except Exception as e:
            self._drop("read: %r" % (e,))

    async def _pinger(self):
        try:
            while self.connected:
                await asyncio.sleep_ms(self.keepalive * 500)
                if time.ticks_diff(time.ticks_ms(), self.last_rx) > self.keepalive * 1500:
                    self._drop("keepalive timeout")
                    return
                await self._send(bytes((_PINGREQ, 0)))
        except Exception as e:
            self._drop("ping: %r" % (e,))

    async def _handle(self, first, data):
        kind = first & 0xF0
        if kind == _PUBLISH:
            qos = (first >> 1) & 3
            n = (data[0] << 8) | data[1]
            topic = bytes(data[2:2 + n]).decode()
            pos = 2 + n
            pid = 0
            if qos:
                pid = (data[pos] << 8) | data[pos + 1]
                pos += 2
            try:
                if self.on_message:
                    self.on_message(topic, bytes(data[pos:]))
            except Exception as e:
                self.log("mqtt", {"error": "on_message: %r" % (e,)})
            if qos == 1:
                await self._send(_packet(_PUBACK, struct.pack("!H", pid)))
        elif kind in (_PUBACK, _SUBACK):
            pid = (data[0] << 8) | data[1]
            p = self.pending.get(pid)
            if kind == _SUBACK and 0x80 in data[2:]:
                self.log("mqtt", {"error": "subscription refused"})
            if p:
                p[1] = True
                p[2] = bytes(data[2:])
                p[0].set()
        # _PINGRESP and anything else: last_rx is already updated, nothing more to do.

    async def _request(self, make, timeout_ms):
        # make(pid, dup) -> packet bytes. Shared by QoS 1 PUBLISH and SUBSCRIBE.
        pid = self._next_pid()
        entry = [asyncio.Event(), False, None]
        self.pending[pid] = entry
        t0 = time.ticks_ms()
        sent = False
        try:
            while True:
                left = self.retry_ms
                if timeout_ms is not None:
                    left = min(left, timeout_ms - time.ticks_diff(time.ticks_ms(), t0))
                    if left <= 0:
                        return None
                if not self.connected:
                    try:
                        await asyncio.wait_for_ms(self.up.wait(), left)
                    except asyncio.TimeoutError:
                        pass
                    continue
                try:
                    await self._send(make(pid, sent))
                    sent = True
                except Exception as e:
                    self._drop("write: %r" % (e,))
                    continue
                if not entry[1]:
                    entry[0].clear()
                    try:
                        await asyncio.wait_for_ms(entry[0].wait(), left)
                    except asyncio.TimeoutError:
                        pass
                if entry[1]:
                    return entry[2]
        finally:
            del self.pending[pid]

    async def publish(self, topic, payload, qos=1, retain=False, timeout_ms=None):
        """QoS 1: True once PUBACKed (retransmitting meanwhile), False if timeout_ms passed first.
        QoS 0: True if written to a live connection."""
        head = _PUBLISH | (qos << 1) | (1 if retain else 0)
        if isinstance(payload, str):
            payload = payload.encode()
        if not qos:
            if not self.connected:
                return False
            try:
                await self._send(_packet(head, _s(topic) + payload))
                return True
            except Exception as e:
                self._drop("write: %r" % (e,))
                return False
        res = await self._request(
            lambda pid, dup: _packet(head | (_DUP if dup else 0), _s(topic) + struct.pack("!H", pid) + payload),
            timeout_ms)
        return res is not None

    async def subscribe(self, topic, qos=1, timeout_ms=None):
        """Remembered for every reconnect; returns True once the broker granted it."""
        self.subs[topic] = qos
        res = await self._request(
            lambda pid, dup: _packet(_SUBSCRIBE, struct.pack("!H", pid) + _s(topic) + bytes((qos,))),
            timeout_ms)
        return res is not None and 0x80 not in res

    async def disconnect(self):
        self._stop = True
        if self.connected:
            try:
                await self._send(bytes((_DISCONNECT, 0)))
            except Exception:
                pass
        self._drop("disconnect")
