# Unit tests of hx.codes: scanner line parsing and the dedupe window.
import time

from hx.codes import CodeError, Dedupe, parse

import t


def test_parse_strips_tail():
    t.eq(parse(b"HXDEMO-1\r\n"), "HXDEMO-1")
    t.eq(parse(b"HXDEMO-1\r"), "HXDEMO-1")
    t.eq(parse(b"\nHXDEMO-1"), "HXDEMO-1")
    t.eq(parse(b"a b"), "a b")
    t.eq(parse("caf\u00e9".encode()), "caf\u00e9")


def test_parse_rejects_garbage():
    for raw, why in (
        (b"", "empty"),
        (b"\r\n", "empty"),
        (b"AB\x00CD", "control characters"),
        (b"\x1b[2J", "control characters"),
        (b"AB\x7f", "control characters"),
        (b"\xff\xfe\xfd", "not UTF-8"),
        (b"X" * 129, "too long"),
        (b"X" * 1000, "too long"),
        ("a\u0085b".encode(), "control characters"),
    ):
        e = t.raises(CodeError, parse, raw)
        t.eq(e.args[0], why, repr(raw))
    t.eq(len(parse(b"X" * 128)), 128)


def test_dedupe_window():
    d = Dedupe(3000)
    t.eq(d.is_repeat("A", 1000), False)
    t.eq(d.is_repeat("A", 2000), True)
    t.eq(d.is_repeat("B", 2100), False)
    t.eq(d.is_repeat("A", 4999), True, "window slides while the code keeps being read")
    t.eq(d.is_repeat("A", 8000), False)
    d.forget("A")
    t.eq(d.is_repeat("A", 8001), False, "forgotten code passes")


def test_dedupe_zero_window():
    d = Dedupe(0)
    t.eq(d.is_repeat("A", 5), False)
    t.eq(d.is_repeat("A", 5), False)


def test_dedupe_bounded_and_tick_wrap():
    d = Dedupe(1000)
    for i in range(50):
        d.is_repeat("C%d" % i, i)
    t.true(len(d.seen) <= 8, "bounded memory")
    t.eq(d.is_repeat("C49", 60), True, "the newest survives eviction")
    d = Dedupe(1000)
    now = time.ticks_add(0, -10)  # just before the tick counter wraps
    t.eq(d.is_repeat("W", now), False)
    t.eq(d.is_repeat("W", time.ticks_add(now, 500)), True)
    t.eq(d.is_repeat("W", time.ticks_add(now, 1600)), False)
