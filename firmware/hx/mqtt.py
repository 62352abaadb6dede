# Our own small asyncio MQTT 3.1.1 client (QoS 0/1, retained last will, keepalive, reconnect).
# Why not umqtt: micropython-lib's umqtt.simple/robust block the event loop on socket reads (a scan
# would wait for the network) and do not recover reliably from WiFi loss; no resilient asyncio client
# is installable from a package registry for MicroPython. So we keep a minimal one we can test.
import asyncio
import errno
import random
import select
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
MAX_PACKET = const(2048)  # incoming packets beyond this are skipped unread (the contract's max is 1 KB)
_KEYED = const(16)  # publishes remembered by key for DUP re-sends under their first packet id


class MQTTError(Exception):
    pass


def _s(v):
    b = v.encode() if isinstance(v, str) else bytes(v)
    return struct.pack("!H", len(b)) + b


def _packet(first, body):
    return _fixed(first, len(body)) + body


def _fixed(first, n):
    """A packet's fixed header for a remaining length of n bytes."""
    hdr = bytearray((first,))
    while True:
        d = n & 0x7F
        n >>= 7
        hdr.append(d | 0x80 if n else d)
        if not n:
            break
    return bytes(hdr)


async def read_packet(r, limit=MAX_PACKET):
    """(first byte, body) of the next packet, body None for one longer than `limit` (read past, not
    kept: a peer cannot make us allocate what it likes); EOFError/OSError when the connection ends."""
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
    if n > limit:
        while n:
            n -= len(await r.readexactly(min(n, 256)))
        return first, None
    return first, ((await r.readexactly(n)) if n else b"")


def tls_context(cadata):
    """A client context that accepts only a broker certificate signed by `cadata` (DER: the gateway's
    own CA, provisioned next to config.json) and issued for the host name we dial."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_verify_locations(cadata=cadata)
    return ctx


def backoff_ms(attempt, base, cap):
    """Full jitter: a random wait in [0, min(cap, base * 2**attempt)], so a fleet that lost its broker
    at once does not come back in step."""
    top = min(cap, base << min(attempt, 16))
    return random.getrandbits(24) % (top + 1)


def close_stream(w):
    """Really close a stream's socket: MicroPython's Stream.close() does nothing (only wait_closed()
    closes), and a socket left to the collector keeps its lwIP buffers until then."""
    s = getattr(w, "s", None)
    try:
        (s or w).close()
    except Exception:
        pass


def _is_ip(host):
    parts = host.split(".")
    return len(parts) == 4 and all(p.isdigit() for p in parts)


class MQTTClient:
    """run() keeps one connection up forever; publish() returns once the broker has the message.

    - clean session; on every (re)connect all subscriptions are renewed and in-flight QoS 1 publishes
      are sent again with DUP set; a publish also retransmits after `retry_ms` without PUBACK.
    - liveness: PINGREQ every keepalive/2; no packet from the broker for 1.5 x keepalive = dead link
      (what a WiFi drop looks like: the socket itself may never report an error).
    - back-off between failed connects: full jitter over a ceiling that doubles from backoff_ms[0] to
      backoff_ms[1] (backoff_ms()).
    - writes wait at most timeout_ms for the socket (then the link is dropped); incoming packets are
      bounded (MAX_PACKET); the link is dropped as soon as net_up() says the network went away.
    - publish(..., key=k) again for the same k re-sends under the first packet id with DUP set.
    """

    def __init__(self, client_id, host, port=1883, user=None, password=None, keepalive=30, will=None,
                 on_message=None, on_connect=None, log=None, net_up=None, backoff_ms=(500, 30000),
                 retry_ms=5000, timeout_ms=5000, ssl=None, addr=None, idle=None):
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
        self.ssl = ssl  # an SSLContext (tls_context): TLS, the broker checked against it; None = plaintext
        self.subs = {}
        self.pending = {}  # packet id -> [Event, acked, result]
        self.pid = 0
        # Keyed publishes not yet acknowledged: key and packet id per slot (fixed size, reused in turn:
        # nothing is allocated per publish).
        self.kkeys = [None] * _KEYED
        self.kpids = [0] * _KEYED
        self.knext = 0
        # The broker's IP. A DNS lookup blocks the whole loop (getaddrinfo is one long C call), so it is
        # never made on the hot path: provisioning gives the address (`addr`), and a name is looked up
        # only while the link is down and `idle()` says no scan waits on screen (_lookup): at first
        # without `addr`, and after 8 failed connects in a row (the broker may have moved: a provisioned
        # address gone stale must not keep the queued scans from ever reaching it). A name that does not
        # resolve falls back to `addr`.
        self.given = addr
        self.addr = addr or (host if _is_ip(host) else None)
        self.fixed = _is_ip(host)  # an address as the host: nothing to look up, ever
        self.idle = idle  # () -> bool: nothing on screen waits for an answer; None = always
        self.lookups = 0
        self.fails = 0
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
            if self.pid not in self.pending and not self._key_of(self.pid):
                return self.pid

    def _key_of(self, pid):
        for i in range(_KEYED):
            if self.kpids[i] == pid and self.kkeys[i] is not None:
                return self.kkeys[i]
        return None

    def _keyed_pid(self, key):
        """(packet id, dup) for a keyed publish: the id of its first attempt if still remembered."""
        for i in range(_KEYED):
            if self.kkeys[i] == key:
                if self.kpids[i] not in self.pending:
                    return self.kpids[i], True
                self.kkeys[i] = None  # that id is busy (a concurrent publish): this one gets a new id
        pid = self._next_pid()
        i = self.knext
        self.knext = (i + 1) % _KEYED
        self.kkeys[i] = key
        self.kpids[i] = pid
        return pid, False

    def _acked(self, pid):
        for i in range(_KEYED):
            if self.kpids[i] == pid:
                self.kkeys[i] = None

    async def _send(self, pkt):
        w = self._w
        if w is None:
            raise OSError(-1)
        async with self._lock:  # one writer at a time: concurrent drains on one socket are not allowed
            w.write(pkt)
            # Bounded: a dead link must not hold the lock (keepalive, the next CONNECT) for minutes.
            await asyncio.wait_for_ms(w.drain(), self.timeout_ms)

    def _drop(self, why):
        if self.connected:
            self.log("mqtt", {"state": "down", "why": why})
        self.connected = False
        self.up.clear()
        self._dead.set()
        w, self._w, self._r = self._w, None, None
        if w is not None:
            close_stream(w)

    async def run(self):
        attempt = 0
        while not self._stop:
            while self.net_up is not None and not self.net_up():
                self.progress = time.ticks_ms()
                await asyncio.sleep_ms(250)
            self.progress = time.ticks_ms()
            try:
                if self.addr is None:
                    await self._lookup()
                await self._connect()
            except Exception as e:  # OSError, EOFError, TimeoutError, MQTTError: all mean "try again"
                self._drop("connect: %r" % (e,))
                self.fails += 1
                if self.fails % 8 == 0 and not self.fixed:
                    self.addr = None  # the broker may have moved: look its name up again (when idle)
                wait = backoff_ms(attempt, self.backoff[0], self.backoff[1])
                attempt += 1
                self.log("mqtt", {"state": "retry", "in_ms": wait, "why": repr(e)})
                await asyncio.sleep_ms(wait)
                continue
            attempt = 0
            self.fails = 0
            await self._session()
            if not self._stop:
                await asyncio.sleep_ms(self.backoff[0])

    async def _lookup(self):
        """Look the broker's name up: it blocks, so only with the link down (no verdict can be awaited
        then) and once `idle()` holds (nothing on screen waits for an answer); an OSError if the name
        does not resolve (the caller backs off and tries again)."""
        while self.idle is not None and not self.idle():
            self.progress = time.ticks_ms()
            await asyncio.sleep_ms(250)
        t0 = time.ticks_ms()
        self.lookups += 1
        try:
            a = socket.getaddrinfo(self.host, self.port)[0][-1]
        except Exception as e:
            self.addr = self.given  # try the provisioned address again (None: look up at the next try)
            raise OSError("DNS %s: %r" % (self.host, e))
        # ESP32: ("10.0.0.2", 1883); unix port: a raw sockaddr_in (bytes 4..7 = the IPv4)
        self.addr = a[0] if isinstance(a, tuple) else "%d.%d.%d.%d" % (a[4], a[5], a[6], a[7])
        self.progress = time.ticks_ms()
        self.log("mqtt", {"state": "dns", "host": self.host, "addr": self.addr, "ms": time.ticks_diff(self.progress, t0)})

    async def _open(self):
        """A stream on a non-blocking socket this client holds. asyncio.open_connection keeps its socket
        to itself, so a connect that times out or is cancelled in there leaks it (the unix port never
        closes it, the ESP32 only at some later GC). The TCP connect completes in the first drain (the
        CONNECT, bounded by timeout_ms); any failure from here on reaches _drop, which closes it."""
        addr = self.addr
        if addr is None:  # run() looks a name up first; never here, on the way to a connect
            raise OSError("no broker address")
        ai = socket.getaddrinfo(addr, self.port, 0, socket.SOCK_STREAM)[0]  # an IP: no DNS
        s = socket.socket(ai[0], ai[1], ai[2])
        s.setblocking(False)
        try:
            try:
                s.connect(ai[-1])
            except OSError as e:
                if e.errno != errno.EINPROGRESS:
                    raise
            await self._writable(s)
        except BaseException:
            s.close()  # also when this connect is cancelled: the socket is ours to close
            raise
        if self.ssl is not None:
            # The handshake runs in the first reads and writes of the non-blocking socket (as asyncio's
            # own open_connection does it); the certificate is checked for the name we were given.
            try:
                s = self.ssl.wrap_socket(s, server_hostname=self.host, do_handshake_on_connect=False)
            except Exception:
                s.close()
                raise
            s.setblocking(False)
        return asyncio.StreamReader(s), asyncio.StreamWriter(s, {})

    async def _writable(self, s):
        """Wait (polling, bounded by timeout_ms) until the TCP connect completed: lwIP refuses writes
        on a socket still connecting, and a refused connect shows as an error/hang-up event."""
        p = select.poll()
        p.register(s, select.POLLOUT)
        t0 = time.ticks_ms()
        while True:
            ev = p.poll(0)
            if ev:
                if ev[0][1] & (select.POLLERR | select.POLLHUP):
                    raise OSError(errno.ECONNREFUSED)
                return
            if time.ticks_diff(time.ticks_ms(), t0) > self.timeout_ms:
                raise OSError(errno.ETIMEDOUT)
            await asyncio.sleep_ms(20)

    async def _connect(self):
        self._dead = asyncio.Event()
        r, w = await self._open()
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
        if first != _CONNACK or data is None or len(data) < 2:
            raise MQTTError("no CONNACK")
        if data[1]:
            raise MQTTError("connection refused, code %d" % data[1])
        self.connected = True
        self.connects += 1
        self.last_rx = time.ticks_ms()
        self.log("mqtt", {"state": "up", "broker": "%s:%d" % (self.host, self.port), "tls": self.ssl is not None})
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
        while not self._dead.is_set():
            if self.net_up is not None and not self.net_up():
                self._drop("network down")  # WiFi lost: say so now, not at the keepalive timeout
                break
            # The session is watched (keepalive: the pinger drops a silent link), so it is progress
            # whatever the keepalive: a long one must not look like a stalled link to the watchdog.
            self.progress = time.ticks_ms()
            await asyncio.sleep_ms(250)
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
        if data is None:
            self.log("mqtt", {"error": "packet over %d bytes skipped" % MAX_PACKET})
            return
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
            if kind == _PUBACK:
                self._acked(pid)
            if kind == _SUBACK and 0x80 in data[2:]:
                self.log("mqtt", {"error": "subscription refused"})
            if p:
                p[1] = True
                p[2] = bytes(data[2:])
                p[0].set()
        # _PINGRESP and anything else: last_rx is already updated, nothing more to do.

    async def _request(self, make, timeout_ms, key=None):
        # make(pid, dup) -> packet bytes. Shared by QoS 1 PUBLISH and SUBSCRIBE.
        if key is None:
            pid, sent = self._next_pid(), False
        else:
            pid, sent = self._keyed_pid(key)
        entry = [asyncio.Event(), False, None]
        self.pending[pid] = entry
        t0 = time.ticks_ms()
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

    async def publish(self, topic, payload, qos=1, retain=False, timeout_ms=None, key=None):
        """QoS 1: True once PUBACKed (retransmitting meanwhile), False if timeout_ms passed first; a
        later publish with the same `key` (e.g. a scan id) is a DUP re-send under the same packet id.
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
            timeout_ms, key)
        return res is not None

    async def publish_frame(self, topic, head, body, chunk=2048):
        """A QoS 0 PUBLISH of head + body, streamed from `body` (a camera's frame buffer) in chunk-sized
        memoryview slices: the frame is never joined into one packet, so a 20-300 KB frame needs no
        second copy on the heap (at most one chunk is buffered by the stream when the socket is full).
        The write lock is held for the whole packet. True if written to a live connection."""
        w = self._w
        if not self.connected or w is None:
            return False
        mv = memoryview(body)
        t = _s(topic)
        try:
            async with self._lock:
                w.write(_fixed(_PUBLISH, len(t) + len(head) + len(mv)) + t + head)
                for i in range(0, len(mv), chunk):
                    w.write(mv[i:i + chunk])
                    await w.drain()
                await w.drain()
            return True
        except Exception as e:
            self._drop("write: %r" % (e,))
            return False

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
