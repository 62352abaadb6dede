# Unit tests of hx.gm65: frames and CRC, reply parsing, probing/configuring a fake module, line reading.
import asyncio

from hx import gm65 as G
from hx import gm65_setup as S

import t


def test_crc_and_known_frames():
    # Constants from the module documentation (see docs/firmware.md).
    t.eq(S.SAVE, bytes((0x7E, 0x00, 0x09, 0x01, 0x00, 0x00, 0x00, 0xDE, 0xC8)))
    t.eq(S.frame(0x09, 0x0000, (0x02,)), bytes((0x7E, 0, 0x09, 0x01, 0, 0, 0x02, 0xFE, 0x8A)))
    t.eq(
        S.read_zone(0x002A),
        bytes((0x7E, 0, 0x07, 0x01, 0, 0x2A, 0x02, 0xD8, 0x0F))[:6] + b"\x01" + S.read_zone(0x002A)[7:],
        "read frame shape",
    )
    t.eq(S.frame(0x07, 0x002A, (0x02,)), bytes((0x7E, 0, 0x07, 0x01, 0, 0x2A, 0x02, 0xD8, 0x0F)))
    t.eq(S.frame(0x08, 0x002A, (0x39, 0x01)), bytes((0x7E, 0, 0x08, 0x02, 0, 0x2A, 0x39, 0x01, 0xA7, 0xEA)))
    t.eq(S.crc16_xmodem(b"123456789"), 0x31C3, "XMODEM check value")


def test_parse_reply():
    t.eq(G.parse_reply(b"\x02\x00\x00\x01\x00\x33\x31"), (0, b"\x00", b""))
    t.eq(G.parse_reply(b"junk\x02\x00\x00\x01\x69\x33\x31rest"), (0, b"\x69", b"rest"))
    t.eq(G.parse_reply(b"\x02\x00\x00\x01"), None, "incomplete")
    t.eq(G.parse_reply(b"HELLO"), None)


def test_line_splitter():
    s = G.LineSplitter()
    t.eq(list(s.feed(b"AB")), [])
    t.eq(s.feed(b"C\r\nDEF\r"), [b"ABC", b"DEF"])
    t.eq(s.feed(b"\nGHI\n"), [b"GHI"], "CRLF split across reads is one terminator")
    t.eq(list(s.feed(b"X" * 700)), [])
    t.eq(s.feed(b"tail\r\nOK\r\n"), [None, b"OK"], "over-long line dropped and reported")
    t.eq(list(s.feed(b"partial")), [])
    t.eq(s.flush(), b"partial")
    t.eq(s.flush(), None)


class Module:
    """A GM65 that answers on one baud rate only and keeps its zones."""

    def __init__(self, baud):
        self.baud = baud
        self.link = 9600
        self.zones = {0x0000: 0x41, 0x000D: 0x01, 0x0060: 0x60, 0x00E2: 0x69}
        self.saved = False
        self.saves = 0
        self.writes = 0

    def set_baud(self, b):
        self.link = b

    def respond(self, data):
        if self.link != self.baud or not data.startswith(b"\x7e\x00"):
            return None
        typ, n, addr = data[2], data[3], (data[4] << 8) | data[5]
        if S.frame(typ, addr, data[6 : 6 + n]) != data:
            return None  # bad CRC: a real module stays silent
        if typ == 0x07:
            return bytes((2, 0, 0, 1, self.zones.get(addr, 0), 0x33, 0x31))
        if typ == 0x08:
            self.zones[addr] = data[6]
            self.writes += 1
        if typ == 0x09:
            self.saved = True
            self.saves += 1
        return b"\x02\x00\x00\x01\x00\x33\x31"


def test_probe_and_configure_at_115200():
    m = Module(115200)
    s = t.FakeStream(m.respond)
    sc = G.Scanner(s, s, m.set_baud, reply_ms=100)

    async def go():
        return await sc.start(G.MODE_CONTINUOUS, 3)

    t.eq(asyncio.run(go()), True)
    t.eq((sc.gm, sc.baud, sc.version), (True, 115200, 0x69))
    t.eq(m.zones[0x0000], 0x42, "mode bits 10 = continuous, other bits kept")
    t.eq(m.zones[0x0013], 0x83, "same-code delay enabled, 3")
    t.eq(m.zones[0x0060] & 0x60, 0x20, "tail CRLF")
    t.true(m.saved, "saved to EEPROM")
    t.eq(m.zones[0x000D] & 3, 0, "zone 0x000D: serial output")
    t.eq(s.tx[0], S.read_zone(S.ZONE_VERSION), "probe first")


def test_settings_saved_only_when_they_change():
    m = Module(9600)
    for _boot in range(3):
        s = t.FakeStream(m.respond)
        sc = G.Scanner(s, s, m.set_baud, reply_ms=100)
        asyncio.run(sc.start(G.MODE_CONTINUOUS, 3))
    t.eq((m.saves, m.writes), (1, 4), "first boot writes 4 zones and saves once; later boots none")
    m.zones[0x0013] = 0
    s = t.FakeStream(m.respond)
    asyncio.run(G.Scanner(s, s, m.set_baud, reply_ms=100).start(G.MODE_CONTINUOUS, 3))
    t.eq((m.saves, m.writes), (2, 5), "one zone changed behind our back: one write, one save")


def test_command_mode():
    m = Module(9600)
    s = t.FakeStream(m.respond)
    sc = G.Scanner(s, s, m.set_baud, reply_ms=100)
    asyncio.run(sc.start(G.MODE_COMMAND, 0))
    t.eq(m.zones[0x0000] & 3, 1)
    t.eq(m.zones.get(0x0013, 0), 0, "same-code delay off")
    asyncio.run(sc.trigger())
    t.eq(s.tx[-1], S.write_zone(0x0002, 1))


def test_no_answer_falls_back_to_line_reader():
    s = t.FakeStream()
    bauds = []
    sc = G.Scanner(s, s, bauds.append, reply_ms=60, idle_ms=30)

    async def go():
        ok = await sc.start()
        s.feed(b"HXDEMO-1\r\n\x01\x02junk\r\nNOTAIL")
        lines = []
        for _ in range(3):
            lines.append(await sc.readline())
        return ok, lines

    ok, lines = asyncio.run(go())
    t.eq(ok, False)
    t.eq(bauds, [9600, 115200, 9600], "probed both rates, back to the default")
    t.eq(len(s.tx), 2, "one probe per rate, nothing else sent")
    t.eq(lines, [b"HXDEMO-1", b"\x01\x02junk", b"NOTAIL"], "line idle ends a code without tail")


def test_late_reply_is_not_a_code():
    s = t.FakeStream()
    sc = G.Scanner(s, s, None, reply_ms=20)

    async def go():
        s.feed(b"\x02\x00\x00\x01\x00\x33\x31CODE\r\n")
        return await sc.readline()

    t.eq(asyncio.run(go()), b"CODE")


def test_reply_glued_to_a_code_is_not_a_bad_code():
    s = t.FakeStream()
    sc = G.Scanner(s, s, None, reply_ms=20, idle_ms=30)

    async def go():
        s.feed(b"CODE-1\r\n\x02\x00\x00\x01\x00\x33\x31")  # a trigger's reply right after the code
        a = await sc.readline()
        s.feed(b"CODE-2\x02\x00\x00")  # glued without a tail, the reply split across reads
        await asyncio.sleep_ms(5)
        s.feed(b"\x01\x00\x33\x31")
        b = await sc.readline()
        s.feed(b"CODE-3\r\n")
        c = await sc.readline()
        return a, b, c

    t.eq(asyncio.run(go()), (b"CODE-1", b"CODE-2", b"CODE-3"))


def test_line_splitter_does_not_rebuild_its_buffer_per_byte():
    import gc

    s = G.LineSplitter()
    code = b"HX" + b"7" * 198  # at 9600 baud a UART read often returns a single byte
    parts = [code[i : i + 1] for i in range(len(code))]
    t.eq(s.feed(code + b"\r\n"), [code])
    gc.collect()
    gc.disable()
    before = gc.mem_alloc()
    for p in parts:
        s.feed(p)
    out = s.feed(b"\r\n")
    used = gc.mem_alloc() - before
    gc.enable()
    t.eq(out, [code])
    # Only the finished line (and the list holding it) is allocated; a buffer rebuilt per byte would
    # take ~20 KB here.
    t.true(used < 600, "%d bytes allocated for a %d-byte code fed byte by byte" % (used, len(code)))
