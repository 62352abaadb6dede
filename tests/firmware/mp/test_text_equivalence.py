# Property test on the VM: the byte-based text checks (protocol, codes, outbox, store) accept and reject
# exactly what the character-based checks they replaced did, on arbitrary text as MicroPython decodes it.
#
# The reference model is the old code, verbatim from main (822e165). It must run here, not under
# CPython: MicroPython's decoder (bytes.decode, json.loads) accepts overlong forms (C1 BF is U+007F,
# E0 82 85 is U+0085), surrogates and code points past U+10FFFF, and the old checks saw those code points.
import json
import random

from hx import protocol as P
from hx import store
from hx.codes import CodeError, parse
from hx.outbox import parse_name

import t

# ---- the old checks (main 822e165), the reference ----
_HEX = "0123456789abcdef"
_IID_ABC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def old_valid_id(s, maxlen):
    if not isinstance(s, str) or not 0 < len(s) <= maxlen:
        return False
    for ch in s:  # noqa: SIM110  (verbatim)
        if not (ch.isalpha() or ch.isdigit() or ch in "_-") or ord(ch) > 127:
            return False
    return True


def old_printable(s):
    for ch in s:
        o = ord(ch)
        if o < 32 or 127 <= o < 160:
            return False
    return True


def old_line(obj, key):
    s = obj.get(key)
    if not isinstance(s, str):
        return ""
    out = ""
    for ch in s[:16]:
        out += ch if 32 <= ord(ch) < 127 else "?"
    return out


def old_parse(raw):
    while raw and raw[-1] in (10, 13):
        raw = raw[:-1]
    while raw and raw[0] in (10, 13):
        raw = raw[1:]
    if not raw:
        raise CodeError("empty")
    if len(raw) > 128 * 4:
        raise CodeError("too long")
    for b in raw:
        if b < 32 or b == 127:
            raise CodeError("control characters")
    try:
        code = raw.decode("utf-8")
    except UnicodeError:
        raise CodeError("not UTF-8")  # noqa: B904  (verbatim)
    for ch in code:
        if 127 <= ord(ch) < 160:
            raise CodeError("control characters")
    if len(code) > 128:
        raise CodeError("too long")
    return code


def old_parse_name(name):
    if len(name) < 16 or len(name) > 16 + 8:
        return None
    for ch in name[:16]:
        if ch not in _HEX:
            return None
    iid = name[16:]
    for ch in iid:
        if not ("0" <= ch <= "9" or "A" <= ch <= "Z" or "a" <= ch <= "z"):
            return None
    return int(name[:8], 16), int(name[8:16], 16), iid


def old_valid_iid(s):
    if not isinstance(s, str) or len(s) != 6:
        return False
    for ch in s:  # noqa: SIM110  (verbatim)
        if ch not in _IID_ABC:
            return False
    return True


# ---- arbitrary text ----
# Bytes that sit on the checks' edges: C0, DEL, C1's lead C2, overlong leads C0/C1, 3- and 4-byte
# leads (E0 overlong, ED surrogates, F4/F5 past U+10FFFF), bytes no decoder takes (F8, FF), and the
# continuation bytes 80, 85, 9F, A0, BF; plus the id alphabets' own edges.
_EDGE = b"\x00\x09\x0a\x0d\x1f -/09:@AZ[_`az{~\x7f\x80\x81\x85\x9f\xa0\xbf\xc0\xc1\xc2\xc3\xdf\xe0\xe4\xed\xef\xf0\xf4\xf5\xf7\xf8\xff"


def _byte(r):
    return _EDGE[r.getrandbits(8) % len(_EDGE)] if r.getrandbits(1) else r.getrandbits(8)


def _cont(r):
    return (
        (0x80, 0x81, 0x82, 0x85, 0x9F, 0xA0, 0xBF)[r.getrandbits(3) % 7]
        if r.getrandbits(1)
        else 0x80 | r.getrandbits(6)
    )


def arbitrary_bytes(r, n):
    return bytes(_byte(r) for _ in range(r.getrandbits(5) % (n + 1)))


def arbitrary_utf8(r, n):
    """Bytes the VM decodes (mostly): a lead byte, then as many continuation bytes as it announces —
    overlong and out-of-range forms included, as a sender could put them in a verdict or a QR code."""
    out = bytearray()
    for _ in range(r.getrandbits(5) % (n + 1)):
        lead = _byte(r)
        if (0x80 <= lead < 0xC0 or lead >= 0xF8) and r.getrandbits(3):
            lead = 0x20 | (lead & 0x5F)  # mostly ASCII instead of a byte no decoder takes as a lead
        out.append(lead)
        k = 1 if 0xC0 <= lead < 0xE0 else 2 if 0xE0 <= lead < 0xF0 else 3 if 0xF0 <= lead < 0xF8 else 0
        for _ in range(k):
            out.append(_cont(r))
    return bytes(out)


def _text(r, n):
    b = arbitrary_utf8(r, n) if r.getrandbits(2) else arbitrary_bytes(r, n)
    try:
        return b.decode()
    except UnicodeError:
        return None


def _same(what, a, b, x):
    if a != b:
        raise t.Fail("%s(%r): old %r, new %r" % (what, x, a, b))


def _cps(s):
    # line() by code point: the old one passed an overlong ASCII form through as is (C1 9D), the new one
    # writes the ASCII byte (5D "]"): the same character, the same glyph on the OLED.
    return [ord(c) for c in s]


def _outcome(fn, raw):
    try:
        return fn(raw)
    except CodeError as e:
        return ("CodeError", e.args[0])


N = 4000


def test_printable_valid_id_line_as_before():
    r = random
    r.seed(1)
    texts = 0
    for _ in range(N):
        s = _text(r, 20)
        if s is None:
            continue
        texts += 1
        _same("printable", old_printable(s), P.printable(s), s.encode())
        for maxlen in (1, 6, 24):
            _same("valid_id", old_valid_id(s, maxlen), P.valid_id(s, maxlen), s.encode())
        _same("line", _cps(old_line({"l1": s}, "l1")), _cps(P.line({"l1": s}, "l1")), s.encode())
        _same("valid_iid", old_valid_iid(s), store.valid_iid(s), s.encode())
    t.true(texts > N // 2, "most generated byte strings decode (%d)" % texts)


def test_verdict_lines_from_json_as_before():
    # What a verdict really carries: json.loads of the payload (escapes too: \u0085 is C1, \ud800 alone).
    r = random
    r.seed(2)
    for _ in range(N // 2):
        s = _text(r, 18)
        if s is None:
            continue
        esc = ("\\u0085", "\\u009f", "\\u00a0", "\\u007f", "\\u0000", "\\ud800", "\\u4e00")[
            r.getrandbits(3) % 7
        ]
        for raw in (
            b'{"l1":"' + s.encode().replace(b"\\", b"").replace(b'"', b"") + b'"}',
            b'{"l1":"a' + esc.encode() + b'b"}',
        ):
            try:
                obj = json.loads(raw)
            except (ValueError, UnicodeError):
                continue
            _same("line", _cps(old_line(obj, "l1")), _cps(P.line(obj, "l1")), raw)
            _same("printable", old_printable(obj["l1"]), P.printable(obj["l1"]), raw)


def test_code_parse_as_before():
    r = random
    r.seed(3)
    for _ in range(N):
        raw = arbitrary_utf8(r, 12) if r.getrandbits(1) else arbitrary_bytes(r, 12)
        if r.getrandbits(2) == 0:
            raw = raw + b"\r\n"
        _same("parse", _outcome(old_parse, raw), _outcome(parse, raw), raw)
    for raw in (
        b"A\xc1\xbfB",
        b"A\xe0\x82\x85",
        b"\xc0\x80",
        b"\xc2\x85",
        b"\xc2A",
        b"x" * 513,
        "é".encode() * 129,
    ):
        _same("parse", _outcome(old_parse, raw), _outcome(parse, raw), raw)


def test_entry_names_as_before():
    r = random
    r.seed(4)
    for _ in range(N):
        hexpart = "".join("0123456789abcdefAg"[r.getrandbits(5) % 18] for _ in range(16))
        s = _text(r, 9) or ""
        for name in (hexpart + s, hexpart[: r.getrandbits(4)] + s, s):
            _same("parse_name", old_parse_name(name), parse_name(name), name.encode())


def test_new_iid_as_before():
    r = random
    r.seed(5)
    abc = _IID_ABC

    def old_new_iid(rand):
        out = ""
        while len(out) < 6:
            for b in rand(16):
                if b < 248 and len(out) < 6:
                    out += abc[b % 62]
        return out

    for _ in range(200):
        stream = bytes(r.getrandbits(8) | (0xF8 if r.getrandbits(2) == 0 else 0) for _ in range(640))

        def src(stream=stream):
            pos = [0]

            def rand(n):
                pos[0] += n
                return stream[pos[0] - n : pos[0]]

            return rand

        _same("new_iid", old_new_iid(src()), store.new_iid(src()), stream)
