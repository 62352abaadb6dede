# The device side of the MQTT contract (docs/protocol.md): topics, scan ids, payload encode/decode.
import json
from micropython import const


V = const(1)
MAX_PAYLOAD = const(1024)
MAX_CODE = const(128)
SOUNDS = ("ok", "deny", "attention", "error")
# Reason codes are not listed here: the device shows l1/l2 and plays `sound`; new reasons need no update.
COMMANDS = ("beep", "show", "reboot", "status")
OFFLINE = b'{"v": 1, "state": "offline"}'


class ProtocolError(Exception):
    pass


def valid_id(s, maxlen):
    # [A-Za-z0-9_-]{1,maxlen}: the device id and scan id alphabet of the contract.
    if not isinstance(s, str) or not 0 < len(s) <= maxlen:
        return False
    for ch in s:
        if not (ch.isalpha() or ch.isdigit() or ch in "_-") or ord(ch) > 127:
            return False
    return True


def topic(device, kind):
    return "hx/v1/dev/%s/%s" % (device, kind)


def make_sid(boot, seq):
    # Boot counter (from flash, bumped every boot) + per-boot sequence: unique per device forever.
    return "%x-%x" % (boot, seq)


def printable(s):
    """True when s has no control characters (C0, DEL, C1)."""
    for ch in s:
        o = ord(ch)
        if o < 32 or 127 <= o < 160:
            return False
    return True


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def scan_error(obj):
    """None when obj is a valid scan, else a short reason (the rules of the scan table)."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    if obj.get("v") != V:
        return "v: must be 1"
    if not valid_id(obj.get("sid"), 24):
        return "sid: 1-24 chars of A-Z a-z 0-9 _ -"
    code = obj.get("code")
    if not isinstance(code, str) or not 0 < len(code) <= MAX_CODE or not printable(code):
        return "code: 1-128 printable characters"
    qty = obj.get("qty")
    if not isinstance(qty, int) or isinstance(qty, bool) or not 1 <= qty <= 99:
        return "qty: must be an integer 1..99"
    if obj.get("dir") not in ("in", "out"):
        return "dir: must be 'in' or 'out'"
    at = obj.get("at")
    if isinstance(at, bool) or not isinstance(at, (int, float)) or at < 0:
        return "at: must be a number >= 0"
    return None


def encode_scan(sid, code, qty, direction, at):
    obj = {"v": V, "sid": sid, "code": code, "qty": qty, "dir": direction, "at": at}
    err = scan_error(obj)
    if err:
        raise ProtocolError(err)
    data = json.dumps(obj).encode()
    if len(data) > MAX_PAYLOAD:
        raise ProtocolError("scan payload too large")
    return data


def decode_scan(payload):
    """Parse and validate a scan payload (used by tests against contract/invalid_scans.json)."""
    obj = _json(payload)
    err = scan_error(obj)
    if err:
        raise ProtocolError(err)
    return obj


def _json(payload):
    if len(payload) > MAX_PAYLOAD:
        raise ProtocolError("payload larger than %d bytes" % MAX_PAYLOAD)
    try:
        return json.loads(payload)
    except (ValueError, UnicodeError):
        raise ProtocolError("not JSON")


def _line(obj, key):
    # OLED lines are at most 16 chars; a longer or odd one is cut/cleaned rather than dropping the verdict.
    s = obj.get(key)
    if not isinstance(s, str):
        return ""
    out = ""
    for ch in s[:16]:
        out += ch if 32 <= ord(ch) < 127 else "?"
    return out


def decode_verdict(payload):
    """Return a normalised verdict dict or raise ProtocolError."""
    obj = _json(payload)
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
    if not _is_int(left):
        left = None
    detail = obj.get("detail")
    return {"sid": sid, "ok": ok, "reason": reason, "l1": _line(obj, "l1"), "l2": _line(obj, "l2"),
            "sound": sound, "left": left, "detail": detail if isinstance(detail, str) else ""}


def decode_command(payload):
    """Return (cmd, args) or raise ProtocolError; unknown commands are returned (the app logs them)."""
    obj = _json(payload)
    if not isinstance(obj, dict) or obj.get("v") != V:
        raise ProtocolError("command: not a v1 object")
    cmd = obj.get("cmd")
    if not isinstance(cmd, str):
        raise ProtocolError("command: cmd missing")
    args = obj.get("args")
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ProtocolError("command: args must be an object")
    if cmd == "beep" and args.get("sound", "ok") not in SOUNDS:
        raise ProtocolError("beep: unknown sound")
    if cmd == "show":
        args = {"l1": _line(args, "l1"), "l2": _line(args, "l2"), "secs": args.get("secs")}
        if not _is_int(args["secs"]) or not 1 <= args["secs"] <= 3600:
            args["secs"] = 5
    return cmd, args


def encode_status(fw, board, ip, rssi, heap, outbox, up, mode):
    return json.dumps({"v": V, "state": "online", "fw": fw, "board": board, "ip": ip, "rssi": rssi,
                       "heap": heap, "outbox": outbox, "up": up, "mode": mode}).encode()
