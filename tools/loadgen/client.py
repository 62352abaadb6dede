# Simulated scanning devices: one plain asyncio protocol per device speaking just enough MQTT 3.1.1.
#
# A device connects with a clean session (client id = device id), subscribes to its verdict topic with QoS 1,
# publishes scans with QoS 1 and acknowledges verdicts, like the firmware does. Writes made while handling one
# socket read are coalesced into one send, which keeps the generator's own CPU low under saturation.
from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable

from tools.loadgen import codec
from tools.loadgen.stats import Tally

TOPIC_PREFIX = "hx/v1/dev"


class DeviceError(RuntimeError):
    """A simulated device could not connect or subscribe, or lost its connection."""


def scan_topic(device: str) -> str:
    return f"{TOPIC_PREFIX}/{device}/scan"


def verdict_topic(device: str) -> str:
    return f"{TOPIC_PREFIX}/{device}/verdict"


def scan_payload(sid: str, code: str, qty: int = 1, direction: str = "in", at: int | None = None) -> bytes:
    """A contract-conforming scan (docs/protocol.md); sid and code come from us, so plain JSON encoding."""
    return json.dumps(
        {
            "v": 1,
            "sid": sid,
            "code": code,
            "qty": qty,
            "dir": direction,
            "at": int(time.time()) if at is None else at,
        },
        separators=(",", ":"),
    ).encode()


class Device(asyncio.Protocol):
    """One simulated device on one TCP connection to the broker."""

    def __init__(self, device_id: str, tally: Tally, keepalive: int = 60) -> None:
        self.id = device_id
        self.tally = tally
        self.keepalive = keepalive
        self.scan_topic = scan_topic(device_id)
        self.verdict_topic = verdict_topic(device_id)
        self.status_topic = f"{TOPIC_PREFIX}/{device_id}/status"
        # Called with the scan id after each first verdict for a scan of this device (closed-loop modes).
        self.on_answer: Callable[[Device, str], None] | None = None
        self._transport: asyncio.Transport | None = None
        self._decoder = codec.Decoder()
        self._next_pid = 0
        self._unacked: set[int] = set()  # our QoS 1 publishes without PUBACK yet
        self._out = bytearray()
        self._batching = False
        self._connack: asyncio.Future[int] | None = None
        self._suback: asyncio.Future[bytes] | None = None
        self.last_write = 0.0
        self.pings_sent = 0
        self.pongs = 0
        self.pubacks = 0
        self.verdicts = 0
        self.closed: asyncio.Future[None] | None = None
        self.error: str | None = None

    # --- asyncio.Protocol ---------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Nagle would hold back small packets for tens of milliseconds (see docs/benchmarks.md).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        loop = asyncio.get_running_loop()
        self.closed = loop.create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.error is None and exc is not None:
            self.error = f"connection lost: {exc!r}"
        for fut in (self._connack, self._suback):
            if fut is not None and not fut.done():
                fut.set_exception(DeviceError(f"{self.id}: connection closed during handshake"))
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(None)
        self._transport = None

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self._batching = True
        try:
            for pkt in self._decoder.feed(data):
                self._handle(pkt, now)
        except codec.CodecError as e:
            self.error = f"protocol error: {e}"
            if self._transport is not None:
                self._transport.close()
        finally:
            self._batching = False
            self._flush()

    # --- packet handling ----------------------------------------------------------------------------------

    def _handle(self, pkt: codec.Packet, now: float) -> None:
        t = pkt.type
        if t == codec.PUBLISH:
            pub = codec.decode_publish(pkt)
            if pub.qos == 1:
                self._write(codec.encode_puback(pub.packet_id))
            if pub.topic == self.verdict_topic:
                self._on_verdict(pub.payload, now)
        elif t == codec.PUBACK:
            self._unacked.discard(codec.packet_id_of(pkt))
            self.pubacks += 1
        elif t == codec.PINGRESP:
            self.pongs += 1
        elif t == codec.CONNACK:
            if self._connack is not None and not self._connack.done():
                self._connack.set_result(codec.connack_code(pkt))
        elif t == codec.SUBACK:
            if self._suback is not None and not self._suback.done():
                self._suback.set_result(codec.suback_codes(pkt))
        else:
            raise codec.CodecError(f"unexpected packet type {t} from the broker")

    def _on_verdict(self, payload: bytes, now: float) -> None:
        self.verdicts += 1
        try:
            msg = json.loads(payload)
            sid = msg["sid"]
            ok = msg["ok"]
            reason = msg["reason"]
            if msg.get("v") != 1 or not isinstance(sid, str) or not isinstance(ok, bool):
                raise ValueError("not a v1 verdict")
        except (ValueError, KeyError, TypeError):
            self.tally.bad_verdicts += 1
            return
        if self.tally.on_verdict(sid, self.id, ok, str(reason), now) and self.on_answer is not None:
            self.on_answer(self, sid)

    def _write(self, data: bytes) -> None:
        if self._batching:
            self._out += data
        elif self._transport is not None:
            self._transport.write(data)
            self.last_write = time.monotonic()

    def _flush(self) -> None:
        if self._out and self._transport is not None:
            self._transport.write(bytes(self._out))
            self.last_write = time.monotonic()
        self._out.clear()

    def _pid(self) -> int:
        self._next_pid = self._next_pid % 0xFFFF + 1
        return self._next_pid

    # --- what a device does -------------------------------------------------------------------------------

    async def handshake(self, timeout: float) -> None:
        """CONNECT (clean session) then SUBSCRIBE to our verdict topic with QoS 1."""
        loop = asyncio.get_running_loop()
        self._connack = loop.create_future()
        self._write(codec.encode_connect(self.id, keepalive=self.keepalive, clean_session=True))
        code = await asyncio.wait_for(self._connack, timeout)
        if code != 0:
            raise DeviceError(f"{self.id}: CONNACK refused with code {code}")
        self._suback = loop.create_future()
        self._write(codec.encode_subscribe(self._pid(), self.verdict_topic, qos=1))
        granted = await asyncio.wait_for(self._suback, timeout)
        if granted[:1] != b"\x01":
            raise DeviceError(f"{self.id}: verdict subscription granted {granted!r}, wanted QoS 1")

    def send_scan(self, sid: str, code: str, qty: int = 1) -> None:
        """Publish one scan with QoS 1 and start its round-trip clock."""
        if self._transport is None:
            raise DeviceError(f"{self.id}: not connected")
        pid = self._pid()
        self._unacked.add(pid)
        data = codec.encode_publish(self.scan_topic, scan_payload(sid, code, qty), qos=1, packet_id=pid)
        self.tally.on_sent(sid, self.id, time.perf_counter())
        self._write(data)

    def send_status(self, payload: bytes) -> None:
        """Publish our retained status with QoS 1, as the firmware does at connect and every heartbeat."""
        if self._transport is None:
            raise DeviceError(f"{self.id}: not connected")
        pid = self._pid()
        self._unacked.add(pid)
        self._write(codec.encode_publish(self.status_topic, payload, qos=1, packet_id=pid, retain=True))

    def ping(self) -> None:
        self.pings_sent += 1
        self._write(codec.PINGREQ_BYTES)

    @property
    def unacked(self) -> int:
        return len(self._unacked)

    @property
    def connected(self) -> bool:
        return self._transport is not None

    def disconnect(self) -> None:
        if self._transport is not None:
            self._transport.write(codec.DISCONNECT_BYTES)
            self._transport.close()


async def connect_devices(
    host: str,
    port: int,
    ids: list[str],
    tally: Tally,
    timeout: float = 10.0,
    keepalive: int = 60,
    parallel: int = 50,
) -> list[Device]:
    """Open, CONNECT and SUBSCRIBE one connection per device id, a bounded number at a time."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(parallel)
    devices: list[Device] = []

    async def one(device_id: str) -> Device:
        async with gate:
            _, proto = await asyncio.wait_for(
                loop.create_connection(lambda: Device(device_id, tally, keepalive), host, port), timeout
            )
            await proto.handshake(timeout)
            return proto

    results = await asyncio.gather(*(one(i) for i in ids), return_exceptions=True)
    errors: list[BaseException] = []
    for r in results:
        if isinstance(r, BaseException):
            errors.append(r)
        else:
            devices.append(r)
    if errors:
        for d in devices:
            d.disconnect()
        raise DeviceError(f"{len(errors)} of {len(ids)} devices failed to connect; first: {errors[0]!r}")
    return devices


async def keepalive_loop(devices: list[Device], keepalive: int) -> None:
    """Send PINGREQ on connections idle for half the keepalive period, as an MQTT client must."""
    while True:
        await asyncio.sleep(max(0.5, keepalive / 4))
        now = time.monotonic()
        for d in devices:
            if d.connected and now - d.last_write >= keepalive / 2:
                d.ping()
