# Test helpers for the MicroPython runner: checks, temp dirs, fake streams and buses (only the bus is fake).
import asyncio
import os
import sys

_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
ROOT = _here + "/../../.."
FIRMWARE = os.getenv("HX_FIRMWARE") or ROOT + "/firmware"
if FIRMWARE not in sys.path:
    sys.path.insert(0, FIRMWARE)

from hx.ota import rmtree  # noqa: E402  (one tree removal: the firmware's own)

CONTRACT = ROOT + "/contract"
HARDWARE = ROOT + "/hardware"

_tmp = []


class Fail(Exception):
    pass


def eq(a, b, what=""):
    if a != b:
        raise Fail("%s: %r != %r" % (what, a, b))


def true(x, what=""):
    if not x:
        raise Fail("expected true: %s" % what)


def raises(exc, fn, *args):
    try:
        fn(*args)
    except exc as e:
        return e
    raise Fail("%s not raised by %r%r" % (exc.__name__, fn, args))


def read(path):
    with open(path) as f:
        return f.read()


def tmpdir():
    base = os.getenv("TMPDIR") or "/tmp"
    name = "%s/hxfw-%d-%d" % (base, len(_tmp), int.from_bytes(os.urandom(4), "little"))
    os.mkdir(name)
    _tmp.append(name)
    return name


def cleanup():
    for p in _tmp:
        rmtree(p)


class FakeStream:
    """An asyncio-style reader/writer pair on bytes: reads what the test (or `responder`) queued."""

    def __init__(self, responder=None):
        self.rx = b""
        self.tx = []
        self.responder = responder

    def feed(self, data):
        self.rx += data

    async def read(self, n):
        while not self.rx:
            await asyncio.sleep_ms(5)
        out, self.rx = self.rx[:n], self.rx[n:]
        return out

    def write(self, data):
        self.tx.append(bytes(data))
        if self.responder:
            reply = self.responder(bytes(data))
            if reply:
                self.rx += reply

    async def drain(self):
        return


class FakeI2C:
    def __init__(self):
        self.writes = []

    def writeto(self, addr, buf):
        self.writes.append((addr, bytes(buf)))

    def writevto(self, addr, bufs):
        self.writes.append((addr, b"".join(bytes(b) for b in bufs)))


class FakePWM:
    def __init__(self):
        self.log = []
        self.f = 0

    def freq(self, f=None):
        if f is not None:
            self.f = f
            self.log.append(("freq", f))
        return self.f

    def duty_u16(self, d=None):
        if d is not None:
            self.log.append(("duty", d))
        return 0


class FakePin:
    def __init__(self):
        self.log = []
        self.v = 0

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = v
        self.log.append(v)


class MemStore:
    """hx.store.DirStore's interface in RAM, for tests of the outbox policy alone."""

    def __init__(self):
        self.files = {}

    def names(self):
        return sorted(self.files)

    def write(self, name, data):
        self.files[name] = bytes(data)

    def read(self, name):
        return self.files[name]

    def remove(self, name):
        self.files.pop(name, None)
