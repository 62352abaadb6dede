# The device side of the MQTT contract (docs/protocol.md): topics, scan ids, payload encode/decode.
import json
from micropython import const


V = const(1)
MAX_PAYLOAD = const(1024)
MAX_CODE = const(128)
SOUNDS = ("ok", "deny", "attention", "error")
# Reason codes are not listed here: the device shows l1/l2 and plays `sound`; new reasons need no update.
OPS = ("redeem", "check", "annul", "login", "logout")
# Answers that decided nothing (the gateway could not): the scan stays queued and is retried with
# back-off. Any verdict carrying "retry": true counts too, so new transient reasons need no update.
TRANSIENT = ("INTERNAL", "RATE_LIMITED", "UNKNOWN_DEVICE")
OFFLINE = b'{"v": 1, "state": "offline"}'
# Retained by the gateway (its last will says offline): "broker up, gateway down" shows as OFFLINE.
GATEWAY_TOPIC = "hx/v1/gateway/status"


_T_MIN = 1704067200  # 2024-01-01: a gateway clock before that is not set
_T_MAX = 4102444800  # 2100-01-01 (the contract's max_device_time)
CLOCK_SLACK_S = 90  # a retained presence is at most 60 s old: only a larger error moves a set clock


def gateway_status(payload):
    """(up, t): up is False only for the gateway's own offline message (anything else, or nothing
    yet, counts as up); t is the gateway's Unix time from an online message, or None."""
    try:
        obj = json.loads(payload)
        up = obj.get("state") != "offline"
    except (ValueError, AttributeError):
        return True, None
    t = obj.get("t")
    if not up or not is_int(t) or not _T_MIN <= t <= _T_MAX:
        t = None
    return up, t


def clock_needs(now, t):
    """Whether a device clock reading `now` (0 = never set) should be set to the gateway's `t`."""
    return t is not None and (not now or abs(now - t) > CLOCK_SLACK_S)


class ProtocolError(Exception):
    pass


# Text is checked byte by byte (s.encode()), never character by character: MicroPython interns every
# character a str yields when iterated or indexed, for good, so a verdict line or a code in another
# script would grow the heap by a qstr per new character (and a whole new qstr pool now and then).


def valid_id(s, maxlen):
    # [A-Za-z0-9_-]{1,maxlen}: the device id and scan id alphabet of the contract.
    if not isinstance(s, str) or not 0 < len(s) <= maxlen:
        return False
    for b in s.encode():
        if not (48 <= b <= 57 or 65 <= b <= 90 or 97 <= b <= 122 or b == 95 or b == 45):
            return False
    return True


def topic(device, kind):
    return "hx/v1/dev/%s/%s" % (device, kind)


def make_sid(iid, boot, seq):
    # Install id (random, made at the first boot after a flash erase) + boot counter (bumped every
    # boot) + per-boot sequence: unique per device forever, even when a board is erased and starts
    # counting boots from 1 again. At most 6 + 1 + 8 + 1 + 8 = 24 characters.
    return "%s-%x-%x" % (iid, boot, seq)


def printable(s):
    """True when s has no control characters (C0, DEL, C1)."""
    return printable_utf8(s.encode())


def code_points(b):
    """The code points of UTF-8 bytes b, read the way MicroPython's str reads them: a lead byte's bits,
    then those of every continuation byte after it. MicroPython's decoder (bytes.decode, json.loads)
    takes overlong forms, so C1 BF is U+007F and E0 82 85 is U+0085: a check of the byte pattern alone
    (C2 80..C2 9F) would let such a control character through where the character check caught it.
    Ints only: nothing is interned."""
    cp = -1
    for o in b:
        if 0x80 <= o < 0xC0 and cp >= 0:
            cp = ((cp << 6) | (o & 0x3F)) & 0x3FFFFFF  # bounded: a small int even on junk bytes
            continue
        if cp >= 0:
            yield cp
        # A lead byte's bits without its length bits, exactly as MicroPython's utf8_get_char takes them.
        cp = o & 0x7F
        m = 0x40 if o >= 0x80 else 0
        while cp & m:
            cp &= ~m
            m >>= 1
    if cp >= 0:
        yield cp


def printable_utf8(b):
    """True when the UTF-8 bytes b hold no control character: C0, DEL, or C1 (U+0080..U+009F)."""
    for o in code_points(b):
        if o < 32 or 127 <= o < 160:
            return False
    return True


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def scan_error(obj):
    """None when obj is a valid scan, else a short reason (the rules of the scan table)."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    if obj.get("v") != V:
        return "v: must be 1"
    if not valid_id(obj.get("sid"), 24):
        return "sid: 1-24 chars of A-Z a-z 0-9 _ -"
    op = obj.get("op", "redeem")
    if op not in OPS:
        return "op: unknown"
    if op == "annul" and not valid_id(obj.get("ref"), 24):
        return "ref: an annul names the scan id it undoes"
    if op == "login":
        pin = obj.get("pin")
        if not isinstance(pin, str) or not 4 <= len(pin) <= 8 or not pin.isdigit():
            return "pin: 4-8 digits"
    if op in ("redeem", "check"):
        code = obj.get("code")
        if not isinstance(code, str) or not 0 < len(code) <= MAX_CODE or not printable(code):
            return "code: 1-128 printable characters"
    qty = obj.get("qty", 1)
    if not is_int(qty) or not 1 <= qty <= 99:
        return "qty: must be an integer 1..99"
    amt = obj.get("amt")
    if amt is not None and (not is_int(amt) or not 1 <= amt <= 10000000):
        return "amt: cents 1..10000000"
    if obj.get("dir", "in") not in ("in", "out"):
        return "dir: must be 'in' or 'out'"
    at = obj.get("at", 0)
    if isinstance(at, bool) or not isinstance(at, (int, float)) or at < 0:
        return "at: must be a number >= 0"
    return None


def encode_scan(sid, code, qty, direction, at, op=None, amt=None, ref=None, pin=None):
    """A scan payload. `op` None = a plain redeem (the contract's default, no `op` key: old gateways)."""
    obj = {"v": V, "sid": sid, "dir": direction, "at": at}
    if op:
        obj["op"] = op
    if code is not None:
        obj["code"] = code
    if op not in ("annul", "login", "logout"):
        obj["qty"] = qty
    if amt is not None:
        obj["amt"] = amt
    if ref is not None:
        obj["ref"] = ref
    if pin is not None:
        obj["pin"] = pin
    err = scan_error(obj)
    if err:
        raise ProtocolError(err)
    data = json.dumps(obj).encode()
    if len(data) > MAX_PAYLOAD:
        raise ProtocolError("scan payload too large")
    return data


def decode_scan(payload):
    """Parse and validate a scan payload (used by tests against contract/invalid_scans.json)."""
    obj = json_obj(payload)
    err = scan_error(obj)
    if err:
        raise ProtocolError(err)
    return obj


def json_obj(payload):
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError("payload larger than %d bytes" % MAX_PAYLOAD)
    try:
        return json.loads(payload)
    except (ValueError, UnicodeError):
        raise ProtocolError("not JSON")


def line(obj, key):
    # OLED lines are at most 16 chars; a longer or odd one is cut/cleaned rather than dropping the verdict.
    s = obj.get(key)
    if not isinstance(s, str):
        return ""
    out = bytearray()
    for o in code_points(s.encode()):  # one "?" per character outside printable ASCII
        out.append(o if 32 <= o < 127 else 63)
        if len(out) == 16:
            break
    return out.decode()


def decode_verdict(payload):
    """Return a normalised verdict dict or raise ProtocolError."""
    obj = json_obj(payload)
    if not isinstance(obj, dict) or obj.get("v") != V:
        raise ProtocolError("verdict: not a v1 object")
    sid = obj.get("sid")
    if not valid_id(sid, 24):
        raise ProtocolError("verdict: bad sid")
    ok = obj.get("ok")
    if not isinstance(ok, bool):
        raise ProtocolError("verdict: ok must be true/false")
    reason = obj.get("reason")
    if not isinstance(reason, str):
        raise ProtocolError("verdict: reason missing")
    if ok and reason != "OK":
        # OK must be unambiguous: only an explicit ok=true + reason OK ever opens a gate.
        raise ProtocolError("verdict: ok=true with reason %s" % reason)
    sound = obj.get("sound")
    if sound not in SOUNDS:
        sound = "ok" if ok else "error"
    left = obj.get("left")
    if not is_int(left):
        left = None
    detail = obj.get("detail")
    v = {
        "sid": sid,
        "ok": ok,
        "reason": reason,
        "l1": line(obj, "l1"),
        "l2": line(obj, "l2"),
        "sound": sound,
        "left": left,
        "detail": detail if isinstance(detail, str) else "",
    }
    if obj.get("check") is True:
        # A `check` answer: what may be redeemed now. Only these keys drive the quantity picker.
        mx = obj.get("max")
        v["check"] = True
        v["max"] = mx if isinstance(mx, int) and not isinstance(mx, bool) and mx > 0 else 1
        v["kind"] = obj.get("kind") if obj.get("kind") in ("ticket", "pack", "value") else "ticket"
        v["title"] = line(obj, "title") or v["l1"]
    bal = obj.get("bal")
    if is_int(bal):
        v["bal"] = bal
    v["retry"] = not ok and (obj.get("retry") is True or reason in TRANSIENT)
    return v


def encode_status(fw, board, ip, rssi, heap, outbox, up, mode, late=0, reused=0, ota=None):
    obj = {
        "v": V,
        "state": "online",
        "fw": fw,
        "board": board,
        "ip": ip,
        "rssi": rssi,
        "heap": heap,
        "outbox": outbox,
        "up": up,
        "mode": mode,
    }
    # Counters of verdicts not acted on, only when there were any: late ones (the screen had moved
    # on) and SID_REUSED refusals. A healthy device's status stays as small as before.
    if late:
        obj["late"] = late
    if reused:
        obj["reused"] = reused
    if ota:
        obj["ota"] = ota  # an update's progress or outcome (hx/ota.py, docs/protocol.md)
    return json.dumps(obj).encode()
