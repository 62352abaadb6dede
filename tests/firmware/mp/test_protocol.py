# Unit tests of hx.protocol against the shared contract files (contract/examples, invalid_scans.json).
import json

from hx import commands as C
from hx import protocol as P

import t


def _ex(name):
    return t.read(t.CONTRACT + "/examples/" + name + ".json")


def test_topics_match_contract():
    topics = json.loads(t.read(t.CONTRACT + "/topics.json"))
    for kind in ("scan", "verdict", "status", "cmd"):
        t.eq(P.topic("dev-1", kind), topics[kind].replace("{device}", "dev-1"), kind)
    for reason in topics["reasons"]:
        ok = reason == "OK"
        v = P.decode_verdict(json.dumps({"v": 1, "sid": "1-1", "ok": ok, "reason": reason, "sound": "deny"}))
        t.eq(v["reason"], reason)
    t.eq(list(P.SOUNDS), topics["sounds"], "sounds")
    t.eq(P.MAX_PAYLOAD, topics["max_payload"], "max payload")


def test_example_scan_round_trip():
    ex = json.loads(_ex("scan"))
    t.eq(P.decode_scan(_ex("scan")), ex)
    data = P.encode_scan(ex["sid"], ex["code"], ex["qty"], ex["dir"], ex["at"])
    t.eq(json.loads(data), ex)


def test_invalid_scans_rejected():
    cases = json.loads(t.read(t.CONTRACT + "/invalid_scans.json"))
    t.true(len(cases) >= 10, "cases loaded")
    for case in cases:
        try:
            P.decode_scan(case["payload"])
        except P.ProtocolError:
            continue
        raise t.Fail("accepted invalid scan: " + case["why"])


def test_encode_refuses_what_the_gateway_would_reject():
    t.raises(P.ProtocolError, P.encode_scan, "1-1", "", 1, "in", 0)
    t.raises(P.ProtocolError, P.encode_scan, "1-1", "A\x00B", 1, "in", 0)
    t.raises(P.ProtocolError, P.encode_scan, "1-1", "X" * 129, 1, "in", 0)
    t.raises(P.ProtocolError, P.encode_scan, "1-1", "X", 100, "in", 0)
    t.raises(P.ProtocolError, P.encode_scan, "1 1", "X", 1, "in", 0)
    t.raises(P.ProtocolError, P.encode_scan, "1-1", "X", 1, "up", 0)
    # The longest legal scan still fits the payload limit.
    data = P.encode_scan("f" * 24, "\u00e9" * 128, 99, "out", 4102444800)
    t.true(len(data) <= P.MAX_PAYLOAD, "fits")


def test_hole1_sid_carries_the_install_id():
    """Hole 1: every scan id names the install (random, renewed by a flash erase), so a re-flashed
    board counting boots from 1 again never sends an id of its former install; still <= 24 chars."""
    t.eq(P.make_sid("Ab3xYz", 3, 26), "Ab3xYz-3-1a")
    t.true(P.make_sid("Ab3xYz", 1, 1) != P.make_sid("Qq9Q0w", 1, 1), "boot 1 of another install")
    longest = P.make_sid("zzzzzz", 0xFFFFFFFF, 0xFFFFFFFF)
    t.eq(longest, "zzzzzz-ffffffff-ffffffff")
    t.true(P.valid_id(longest, 24), "max sid length and alphabet")


def test_hole20_transient_reasons_match_contract():
    """Hole 20: the transient answers (kept and retried) are the contract's list, plus any verdict
    with "retry": true; final ones (SID_REUSED included) are not retried."""
    topics = json.loads(t.read(t.CONTRACT + "/topics.json"))
    t.eq(sorted(P.TRANSIENT), sorted(topics["transient"]))
    for reason in topics["transient"]:
        v = P.decode_verdict(json.dumps({"v": 1, "sid": "1-1", "ok": False, "reason": reason}))
        t.eq(v["retry"], True, reason)
    v = P.decode_verdict(b'{"v":1,"sid":"1-1","ok":false,"reason":"BUSY_NEW","retry":true}')
    t.eq(v["retry"], True, "retry flag")
    for reason in ("SID_REUSED", "ALREADY_USED", "MALFORMED", "FORGED"):
        v = P.decode_verdict(json.dumps({"v": 1, "sid": "1-1", "ok": False, "reason": reason}))
        t.eq(v["retry"], False, reason)
    v = P.decode_verdict(b'{"v":1,"sid":"1-1","ok":true,"reason":"OK","retry":true}')
    t.eq(v["retry"], False, "an OK is final")
    t.eq(P.decode_verdict(_ex("verdict_internal"))["retry"], True, "contract example")
    t.eq(P.decode_verdict(_ex("verdict_sid_reused"))["retry"], False, "contract example")


def test_verdict_examples():
    v = P.decode_verdict(_ex("verdict_ok"))
    t.eq((v["sid"], v["ok"], v["reason"], v["sound"], v["left"]), ("3-1a", True, "OK", "ok", 4))
    t.eq(v["l1"], "OK  VIP Day Pass")
    v = P.decode_verdict(_ex("verdict_already_used"))
    t.eq(
        (v["ok"], v["reason"], v["l1"], v["l2"], v["sound"]),
        (False, "ALREADY_USED", "ALREADY USED", "14:02 Gate 3", "deny"),
    )
    v = P.decode_verdict(_ex("verdict_malformed"))
    t.eq((v["reason"], v["sound"], v["left"]), ("MALFORMED", "error", None))


def test_verdict_rejects():
    bad = [
        b"nope",
        b"[]",
        b'{"v": 2, "sid": "1-1", "ok": false, "reason": "X"}',
        b'{"v": 1, "ok": true, "reason": "OK"}',
        b'{"v": 1, "sid": "1-1", "ok": 1, "reason": "OK"}',
        b'{"v": 1, "sid": "1-1", "ok": true, "reason": "EXPIRED"}',
        b'{"v": 1, "sid": "1-1", "ok": false}',
        b"x" * 2000,
    ]
    for p in bad:
        t.raises(P.ProtocolError, P.decode_verdict, p)


def test_verdict_lines_cleaned():
    v = P.decode_verdict(
        b'{"v":1,"sid":"1-1","ok":false,"reason":"EXPIRED","l1":"ABCDEFGHIJKLMNOPQRS",'
        b'"l2":"a\\u0001b\\u00e9","sound":"weird"}'
    )
    t.eq(v["l1"], "ABCDEFGHIJKLMNOP")
    t.eq(v["l2"], "a?b?")
    t.eq(v["sound"], "error")


def test_commands():
    t.eq(C.decode_command(_ex("cmd_beep")), ("beep", {"sound": "ok"}))
    cmd, args = C.decode_command(_ex("cmd_show"))
    t.eq((cmd, args["l1"], args["l2"], args["secs"]), ("show", "Provisioned", "Gate 3 ready", 5))
    t.eq(C.decode_command(b'{"v":1,"cmd":"reboot"}'), ("reboot", {}))
    t.eq(C.decode_command(b'{"v":1,"cmd":"dance"}')[0], "dance")
    t.raises(P.ProtocolError, C.decode_command, b'{"v":1,"cmd":"beep","args":{"sound":"horn"}}')
    t.raises(P.ProtocolError, C.decode_command, b'{"v":1,"args":{}}')
    t.raises(P.ProtocolError, C.decode_command, b'{"v":1,"cmd":"beep","args":[1]}')


def test_status_matches_example():
    ex = json.loads(_ex("status_online"))
    data = json.loads(
        P.encode_status(
            ex["fw"], ex["board"], ex["ip"], ex["rssi"], ex["heap"], ex["outbox"], ex["up"], ex["mode"]
        )
    )
    t.eq(data, ex)
    t.eq(json.loads(P.OFFLINE), json.loads(_ex("status_offline")))


def test_encode_ops():
    check = json.loads(P.encode_scan("1-2", "VIP-1", 1, "in", 0, "check"))
    t.eq((check["op"], check["code"]), ("check", "VIP-1"))
    red = json.loads(P.encode_scan("1-3", "V-1", 1, "in", 0, None, 1250))
    t.eq((red["amt"], "op" in red), (1250, False))
    annul = json.loads(P.encode_scan("1-4", None, 1, "in", 0, "annul", ref="1-3"))
    t.eq((annul["op"], annul["ref"], "code" in annul, "qty" in annul), ("annul", "1-3", False, False))
    login = json.loads(P.encode_scan("1-5", None, 1, "in", 0, "login", pin="0042"))
    t.eq(login["pin"], "0042")
    t.eq(json.loads(P.encode_scan("1-6", None, 1, "in", 0, "logout"))["op"], "logout")
    t.raises(P.ProtocolError, P.encode_scan, "1-7", None, 1, "in", 0, "login", None, None, "12a4")
    t.raises(P.ProtocolError, P.encode_scan, "1-7", None, 1, "in", 0, "login", None, None, "123")
    t.raises(P.ProtocolError, P.encode_scan, "1-7", None, 1, "in", 0, "annul")
    t.raises(P.ProtocolError, P.encode_scan, "1-7", "X", 1, "in", 0, None, 0)
    t.raises(P.ProtocolError, P.encode_scan, "1-7", None, 1, "in", 0, "check")
    t.raises(P.ProtocolError, P.encode_scan, "1-7", "X", 1, "in", 0, "steal")


def test_decode_check_verdict_extras():
    v = P.decode_verdict(
        json.dumps(
            {
                "v": 1,
                "sid": "1-1",
                "ok": True,
                "reason": "OK",
                "l1": "VIP",
                "l2": "3 left",
                "sound": "ok",
                "left": 3,
                "kind": "pack",
                "check": True,
                "max": 2,
                "title": "VIP Day Pass with a long name",
            }
        )
    )
    t.eq((v["check"], v["max"], v["kind"], v["title"]), (True, 2, "pack", "VIP Day Pass wit"))
    v = P.decode_verdict(
        json.dumps(
            {
                "v": 1,
                "sid": "1-1",
                "ok": True,
                "reason": "OK",
                "check": True,
                "max": "lots",
                "kind": "??",
                "bal": 500,
            }
        )
    )
    t.eq((v["max"], v["kind"], v["title"], v["bal"]), (1, "ticket", "", 500))
    v = P.decode_verdict(json.dumps({"v": 1, "sid": "1-1", "ok": True, "reason": "OK", "check": 1}))
    t.true("check" not in v, "only check: true opens the picker")


def test_gateway_status_and_its_clock():
    ex = _ex("gateway_online")
    t.eq(P.gateway_status(ex), (True, 1795392000))
    t.eq(P.gateway_status(b'{"v":1,"state":"offline"}'), (False, None))
    t.eq(P.gateway_status(b'{"v":1,"state":"online"}'), (True, None), "an older gateway: no clock")
    t.eq(P.gateway_status(b'{"v":1,"state":"online","t":"soon"}'), (True, None))
    t.eq(P.gateway_status(b"garbage"), (True, None))
    t.eq(P.clock_needs(0, 1795392000), True)
    t.eq(P.clock_needs(1795392000, 1795392060), False)
    t.eq(P.clock_needs(1795392000, 1795392200), True)
    t.eq(P.clock_needs(1795392000, None), False)


def test_text_checks_intern_no_characters():
    """Verdict lines, codes, sids and entry names are checked byte by byte: iterating a str would intern
    every new character for good (a verdict in Chinese grew the heap by ~27 B per new character)."""
    import gc

    from hx.codes import parse
    from hx.outbox import parse_name

    def run(base):
        for i in range(base, base + 200):
            ch = bytes((0xE4, 0x80 + i // 64, 0x80 + i % 64)).decode()  # U+4xxx (chr() would intern it)
            P.decode_verdict(
                json.dumps(
                    {
                        "v": 1,
                        "sid": "Ab3xYz-1-%x" % i,
                        "ok": False,
                        "reason": "USED",
                        "l1": ch * 3,
                        "l2": "x" + ch,
                        "detail": ch,
                    }
                )
            )
            parse(("Q-" + ch + "\r\n").encode())
            P.printable(ch)
            parse_name("%08x%08x%s" % (1, i, "Ab3xYz"))

    run(0)  # the first run may grow lasting structures (qstr pools of names seen anyway)
    gc.collect()
    before = gc.mem_alloc()
    run(1400)  # 200 new characters each in l1, the code, printable(): interned, they would cost KBs
    gc.collect()
    t.true(gc.mem_alloc() - before < 512, "heap grew by %d bytes" % (gc.mem_alloc() - before))
    t.eq(
        P.line({"l1": "\u4e00bc\u00e9" + "x" * 20}, "l1"),
        "?bc?" + "x" * 12,
        "one ? per character, 16 at most",
    )
    t.eq(P.printable("a\u0085b"), False, "C1")
    t.eq(P.printable("a\u00a0\u4e00"), True, "no control character")
    t.raises(Exception, parse, "a\u0085b".encode())
