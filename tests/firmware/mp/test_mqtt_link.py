# The MQTT client's link handling against a tiny broker stand-in on a real local socket (VM only):
# sockets really closed, bounded writes and packets, full-jitter back-off, DUP re-sends, network loss.
import asyncio
import os
import socket
import time

from hx import mqtt

import t


class Broker:
    """Accepts connections, answers CONNACK, records every packet; PUBACKs only when told to."""

    def __init__(self, connack=True):
        self.connack = connack
        self.packets = []  # (first byte, body)
        self.ack = True
        self.closed = 0
        self.conns = 0

    async def serve(self, r, w):
        self.conns += 1
        try:
            while True:
                first, body = await mqtt.read_packet(r, 65536)
                self.packets.append((first, body))
                kind = first & 0xF0
                if kind == 0x10 and self.connack:
                    w.write(b"\x20\x02\x00\x00")
                elif kind == 0x30 and self.ack and first & 0x06:
                    n = (body[0] << 8) | body[1]
                    w.write(b"\x40\x02" + body[2 + n : 4 + n])
                elif kind == 0x80:
                    w.write(b"\x90\x03" + body[:2] + b"\x01")
                await w.drain()
        except Exception:
            self.closed += 1
        w.close()
        await w.wait_closed()


async def _serve(cb):
    """(server, port) on a free local port (this port's sockets cannot tell their own port)."""
    for _ in range(20):
        port = 20000 + int.from_bytes(os.urandom(2), "little") % 40000
        try:
            return await asyncio.start_server(cb, "127.0.0.1", port), port
        except OSError:
            pass
    raise OSError("no free port")


def _listen_full():
    """A listening socket with a full backlog that never accepts: a connect to it hangs."""
    for _ in range(20):
        port = 20000 + int.from_bytes(os.urandom(2), "little") % 40000
        s = socket.socket()
        try:
            s.bind(socket.getaddrinfo("127.0.0.1", port)[0][-1])
        except OSError:
            s.close()
            continue
        s.listen(0)
        return s, port
    raise OSError("no free port")


def _fds():
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def test_backoff_is_full_jitter_with_a_doubling_ceiling():
    for attempt, top in ((0, 500), (1, 1000), (3, 4000), (10, 30000), (40, 30000)):
        got = [mqtt.backoff_ms(attempt, 500, 30000) for _ in range(200)]
        t.true(min(got) >= 0 and max(got) <= top, "attempt %d within [0, %d]: %r" % (attempt, top, max(got)))
        t.true(max(got) > top // 2 and min(got) < top // 2, "spread over the whole range (full jitter)")


class _Bytes:
    def __init__(self, data):
        self.data = data

    async def readexactly(self, n):
        if len(self.data) < n:
            raise EOFError()
        out, self.data = self.data[:n], self.data[n:]
        return out


async def test_incoming_packets_are_bounded():
    big = b"\x30" + bytes((0x80 | 0x10, 0x27)) + b"x" * 5008 + b"\xd0\x00"  # 5008 bytes, then PINGRESP
    r = _Bytes(big)
    t.eq(await mqtt.read_packet(r, 2048), (0x30, None), "skipped, not kept")
    t.eq(await mqtt.read_packet(r, 2048), (0xD0, b""), "the stream stays in step")


class _Stuck:
    """A writer whose drain never finishes (a link that died with data in flight)."""

    def __init__(self):
        self.closed = False

    def write(self, b):
        pass

    async def drain(self):
        await asyncio.sleep_ms(100000)

    def close(self):
        self.closed = True


async def test_a_stuck_write_times_out_and_releases_the_lock():
    c = mqtt.MQTTClient("d", "127.0.0.1", 1, timeout_ms=100)
    w = _Stuck()
    c._w = w
    c.connected = True
    t0 = asyncio.ticks() if hasattr(asyncio, "ticks") else None
    t.eq(await c.publish("a/b", b"x", 0), False, "a QoS 0 publish on a dead link fails")
    t.eq((c.connected, w.closed), (False, True), "the link is dropped and its socket closed")
    t.true(not c._lock.locked(), "the lock is free for the next CONNECT")
    del t0


async def test_network_loss_drops_the_link_at_once_and_closes_the_socket():
    b = Broker()
    server, port = await _serve(b.serve)
    up = [True]
    c = mqtt.MQTTClient("d", "127.0.0.1", port, keepalive=60, net_up=lambda: up[0], backoff_ms=(50, 100))
    task = asyncio.create_task(c.run())
    for _ in range(100):
        if c.connected:
            break
        await asyncio.sleep_ms(10)
    t.true(c.connected, "connected")
    up[0] = False
    for _ in range(100):
        if b.closed:
            break
        await asyncio.sleep_ms(10)
    t.eq(c.connected, False, "dropped without waiting for the keepalive")
    t.eq(b.closed, 1, "the broker saw the socket close (not left to the collector)")
    task.cancel()
    server.close()


async def test_resends_are_dups_under_the_same_packet_id():
    b = Broker()
    b.ack = False
    server, port = await _serve(b.serve)
    c = mqtt.MQTTClient("d", "127.0.0.1", port, keepalive=60, retry_ms=5000)
    task = asyncio.create_task(c.run())
    t.eq(await c.publish("hx/s", b"scan-1", 1, False, 300, "sid-1"), False, "no PUBACK in time")
    await c.publish("hx/s", b"other", 1, False, 100, "sid-2")
    b.ack = True
    t.eq(await c.publish("hx/s", b"scan-1", 1, False, 2000, "sid-1"), True)
    pubs = [(f, body) for f, body in b.packets if f & 0xF0 == 0x30 and body.endswith(b"scan-1")]
    t.eq(len(pubs), 2)
    pid = [body[2 + 4 : 2 + 4 + 2] for f, body in pubs]
    t.eq(pid[0], pid[1], "the same packet id")
    t.eq((pubs[0][0] & 0x08, pubs[1][0] & 0x08), (0, 0x08), "the re-send carries DUP")
    other = [body for f, body in b.packets if f & 0xF0 == 0x30 and body.endswith(b"other")]
    t.true(other[0][6:8] != pid[0], "another key, another packet id")
    t.eq([k for k in c.kkeys if k], ["sid-2"], "acknowledged keys are forgotten")
    task.cancel()
    server.close()


async def test_connect_timeouts_leak_no_sockets():
    # A broker that accepts but never answers CONNACK, and one whose backlog is full (connect hangs).
    b = Broker(connack=False)
    server, port = await _serve(b.serve)
    full, fport = _listen_full()
    fill = []
    for _ in range(4):
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(socket.getaddrinfo("127.0.0.1", fport)[0][-1])
        except OSError:
            pass
        fill.append(s)
    before = _fds()
    for p in (port, fport):
        c = mqtt.MQTTClient("d", "127.0.0.1", p, timeout_ms=50, backoff_ms=(1, 2))
        task = asyncio.create_task(c.run())
        await asyncio.sleep_ms(1500)
        task.cancel()
        await asyncio.sleep_ms(50)
        t.true(c.connects == 0, "never connected")
    after = _fds()
    if before is not None:
        t.true(after - before <= 3, "sockets closed after failed connects: %d -> %d fds" % (before, after))
    for s in fill:
        s.close()
    full.close()
    server.close()


class _Lookups:
    """The real socket module, with an eye on name lookups (every call still goes to the real one)."""

    def __init__(self):
        self.names = []

    def __getattr__(self, name):
        return getattr(socket, name)

    def getaddrinfo(self, host, *args):
        if not mqtt._is_ip(host):
            self.names.append(host)
        return socket.getaddrinfo(host, *args)


async def _until(cond, ms):
    for _ in range(ms // 10):
        if cond():
            return True
        await asyncio.sleep_ms(10)
    return cond()


async def test_a_provisioned_address_means_no_dns_while_it_works():
    seen = mqtt.socket = _Lookups()
    try:
        # Nothing listens on this port: every connect fails. The provisioned address is tried 8 times
        # before the name is looked up (when idle); a name that does not resolve falls back to it.
        s, port = _listen_full()
        s.close()
        log = []
        c = mqtt.MQTTClient(
            "d",
            "broker.invalid",
            port,
            addr="127.0.0.1",
            backoff_ms=(5, 10),
            timeout_ms=200,
            log=lambda *a: log.append(a),
        )
        task = asyncio.create_task(c.run())
        t.true(await _until(lambda: c.fails >= 12, 3000), "failed connects: %d" % c.fails)
        task.cancel()
        why = ["DNS" in e[1]["why"] for e in log if e[1].get("state") == "retry"]
        t.eq(
            why[:12],
            [False] * 8 + [True] + [False] * 3,
            "8 connects to the address, one lookup (the name does not resolve), the address again",
        )
        t.eq((seen.names, c.lookups), (["broker.invalid"], 1), "one lookup after 8 failed connects")
        b = Broker()
        server, port = await _serve(b.serve)
        seen.names = []
        c = mqtt.MQTTClient("d", "broker.invalid", port, addr="127.0.0.1")
        task = asyncio.create_task(c.run())
        t.true(await _until(lambda: c.connected, 2000), "connected to the provisioned address")
        t.eq(seen.names, [], "no DNS lookup")
        task.cancel()
        server.close()
    finally:
        mqtt.socket = socket


async def test_review_a_stale_provisioned_address_is_looked_up_again():
    """The broker moved (a new DHCP lease): the provisioned address never answers again. The scans
    queued meanwhile must still reach it: after 8 failed connects the name is looked up (when idle)."""
    seen = mqtt.socket = _Lookups()
    try:
        b = Broker()
        server, port = await _serve(b.serve)  # on 127.0.0.1; 127.0.0.2 refuses
        c = mqtt.MQTTClient("d", "localhost", port, addr="127.0.0.2", backoff_ms=(5, 10), timeout_ms=200)
        task = asyncio.create_task(c.run())
        t.true(await _until(lambda: c.connected, 4000), "reconnected at the name's new address")
        t.eq((seen.names, c.addr, c.fails), (["localhost"], "127.0.0.1", 0), "after one lookup")
        task.cancel()
        server.close()
    finally:
        mqtt.socket = socket


async def test_a_host_name_is_looked_up_once_and_only_when_idle():
    seen = mqtt.socket = _Lookups()
    log = []
    try:
        b = Broker()
        server, port = await _serve(b.serve)
        idle = [False]  # a scan on screen waits for its verdict
        c = mqtt.MQTTClient("d", "localhost", port, idle=lambda: idle[0], log=lambda *a: log.append(a))
        task = asyncio.create_task(c.run())
        await asyncio.sleep_ms(600)
        t.eq((seen.names, c.connected), ([], False), "no lookup while a scan waits")
        t.true(time.ticks_diff(time.ticks_ms(), c.progress) < 600, "the task shows progress (watchdog)")
        idle[0] = True
        t.true(await _until(lambda: c.connected, 2000), "connected once idle")
        t.eq(seen.names, ["localhost"], "looked up once")
        t.eq([e[1]["addr"] for e in log if e[1].get("state") == "dns"], ["127.0.0.1"], "dns logged")
        c._drop("test")  # a reconnect uses the address found
        t.true(await _until(lambda: c.connected, 2000), "reconnected")
        t.eq(seen.names, ["localhost"], "not looked up again")
        task.cancel()
        server.close()
    finally:
        mqtt.socket = socket
