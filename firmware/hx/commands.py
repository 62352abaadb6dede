# Commands from the gateway (docs/protocol.md "command"): decode and act. Loaded per command, then
# unloaded again by App.on_command (hx.lazy): commands are rare, the heap is not.
from hx.protocol import SOUNDS, V, ProtocolError, is_int, json_obj, line


def decode_command(payload):
    """Return (cmd, args) or raise ProtocolError; unknown commands are returned (the app logs them)."""
    obj = json_obj(payload)
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
        args = {"l1": line(args, "l1"), "l2": line(args, "l2"), "secs": args.get("secs")}
        if not is_int(args["secs"]) or not 1 <= args["secs"] <= 3600:
            args["secs"] = 5
    return cmd, args


def handle(payload, now, board, ui, apply, ask_status):
    """Decode one command and act on it: through the board layer (log, reboot), the UI (show),
    `apply` (the app's effect runner) and ask_status() (publish the status now)."""
    try:
        cmd, args = decode_command(payload)
    except ProtocolError as e:
        board.event("cmd", {"error": e.args[0]})
        return
    board.event("cmd", {"cmd": cmd})
    if cmd == "beep":
        apply([("sound", args.get("sound", "ok"))])
    elif cmd == "show":
        apply(ui.show(args["l1"], args["l2"], args["secs"], now))
    elif cmd == "status":
        ask_status()
    elif cmd == "reboot":
        board.reboot()
    else:
        board.event("cmd", {"ignored": cmd})
