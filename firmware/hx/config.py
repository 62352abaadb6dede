# Loads and validates the device's config.json (pure: validate() takes a dict, load() only reads a file).
# Boot-only: hx.start runs checked() through hx.lazy, so this code leaves the heap after boot.
import json

from hx.protocol import valid_id

MODES = ("handheld", "turnstile")
DIRS = ("in", "out")


class ConfigError(Exception):
    pass


def _defaults():
    # A fresh dict every call so callers can never mutate shared defaults.
    return {
        "device": None,
        "site": "",
        "gate": "",
        "mode": "handheld",
        "board": "unix",
        "dir": "in",
        "mqtt": {"host": "127.0.0.1", "port": 1883, "user": None, "password": None, "keepalive": 30,
                 "ca": None, "addr": None},
        "wifi": {"ssid": "", "password": ""},
        "heartbeat_s": 60,
        "dedupe_ms": 3000,
        "outbox_max": 64,
        "inflight": 4,
        "retry_ms": 5000,
        "verdict_timeout_ms": 8000,
        "result_ms": 3000,
        "relay_ms": 800,
        "scanner_mode": "continuous",
        "same_code_s": 3,
        "pick": False,
        "pick_ms": 20000,
        "turn_sensor": False,
        "turn_ms": 8000,
        "ota_key": None,  # hex key of over-the-air updates (the gateway's provisioning gives it): none = no OTA
        # Camera boards only (hx/camera.py): how attempts start and how frames are taken. VGA JPEG:
        # the gateway reads 88 % of realistic 640x480 frames against 80 % at 320x240 (docs/benchmarks.md),
        # and the OV2640 gives VGA JPEG at 25 fps with two frame buffers (8-20 KB a frame).
        "camera": {"trigger": "button", "fps": 5, "burst_ms": 5000, "look_fps": 2, "motion": 12,
                   "fmt": "jpeg", "size": "VGA", "quality": 60},
    }


def _int(d, key, lo, hi, where=""):
    v = d[key]
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ConfigError("%s%s: must be an integer %d..%d, got %r" % (where, key, lo, hi, v))


def _str(d, key, maxlen, where="", null=False):
    v = d[key]
    if v is None and null:
        return
    if not isinstance(v, str) or len(v) > maxlen:
        raise ConfigError("%s%s: must be a string of at most %d chars" % (where, key, maxlen))


def validate(raw):
    """Return a complete config (defaults filled in) or raise ConfigError naming the bad key."""
    if not isinstance(raw, dict):
        raise ConfigError("config must be a JSON object")
    cfg = _defaults()
    for key in raw:
        if key in ("mqtt", "wifi", "camera"):
            sub = raw[key]
            if not isinstance(sub, dict):
                raise ConfigError("%s: must be an object" % key)
            for k in sub:
                if k not in cfg[key]:
                    raise ConfigError("%s.%s: unknown key" % (key, k))
                cfg[key][k] = sub[k]
        elif key in cfg:
            cfg[key] = raw[key]
        else:
            # Unknown keys are refused: a typo (e.g. "heartbeat") must not silently fall back to a default.
            raise ConfigError("%s: unknown key" % key)
    if not valid_id(cfg["device"], 32):
        raise ConfigError("device: required, 1-32 chars of A-Z a-z 0-9 _ -")
    _str(cfg, "site", 64)
    _str(cfg, "gate", 32)
    _str(cfg, "board", 32)
    if cfg["mode"] not in MODES:
        raise ConfigError("mode: must be one of %s" % ", ".join(MODES))
    if cfg["dir"] not in DIRS:
        raise ConfigError("dir: must be 'in' or 'out'")
    if cfg["scanner_mode"] not in ("continuous", "command"):
        raise ConfigError("scanner_mode: must be 'continuous' or 'command'")
    m = cfg["mqtt"]
    if not isinstance(m["host"], str) or not m["host"]:
        raise ConfigError("mqtt.host: required string")
    _int(m, "port", 1, 65535, "mqtt.")
    _int(m, "keepalive", 5, 3600, "mqtt.")
    _str(m, "user", 64, "mqtt.", True)
    _str(m, "password", 128, "mqtt.", True)
    _str(m, "ca", 32, "mqtt.", True)  # a DER file next to config.json: TLS, the broker verified against it
    # The broker's IPv4 address when `host` is a name (provisioning looks it up): the device then makes
    # no DNS lookup (it would block the event loop) while that address connects; after 8 failed connects
    # it looks the name up once, when idle (hx/mqtt.py). `host` stays the name the TLS check uses.
    _str(m, "addr", 15, "mqtt.", True)
    if m["addr"] is not None:
        parts = m["addr"].split(".")
        if len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
            raise ConfigError("mqtt.addr: an IPv4 address, e.g. 192.168.1.10")
    _str(cfg["wifi"], "ssid", 32, "wifi.")
    _str(cfg["wifi"], "password", 64, "wifi.")
    _int(cfg, "heartbeat_s", 5, 86400)
    _int(cfg, "dedupe_ms", 0, 600000)
    _int(cfg, "outbox_max", 1, 1000)
    _int(cfg, "inflight", 1, 16)
    _int(cfg, "retry_ms", 500, 600000)
    _int(cfg, "verdict_timeout_ms", 500, 600000)
    _int(cfg, "result_ms", 200, 600000)
    _int(cfg, "relay_ms", 50, 10000)
    _int(cfg, "same_code_s", 0, 127)
    _int(cfg, "pick_ms", 2000, 600000)
    _int(cfg, "turn_ms", 1000, 60000)
    c = cfg["camera"]
    if "trigger" not in raw.get("camera", {}) and cfg["mode"] == "turnstile":
        c["trigger"] = "motion"  # a turnstile's camera has nobody to press a button: it watches
    if c["trigger"] not in ("button", "motion"):
        raise ConfigError("camera.trigger: must be 'button' or 'motion'")
    if c["fmt"] not in ("jpeg", "gray"):
        raise ConfigError("camera.fmt: must be 'jpeg' or 'gray'")
    if c["size"] not in ("QVGA", "VGA"):
        raise ConfigError("camera.size: must be 'QVGA' (320x240) or 'VGA' (640x480)")
    _int(c, "fps", 1, 10, "camera.")
    _int(c, "burst_ms", 500, 30000, "camera.")
    _int(c, "look_fps", 1, 10, "camera.")
    _int(c, "motion", 1, 255, "camera.")
    _int(c, "quality", 10, 95, "camera.")  # JPEG quality in percent (the camera API maps it)
    k = cfg["ota_key"]
    if k is not None and (not isinstance(k, str) or len(k) != 64 or k.strip("0123456789abcdef")):
        raise ConfigError("ota_key: 64 lower-case hex digits or null")
    for key in ("pick", "turn_sensor"):
        if not isinstance(cfg[key], bool):
            raise ConfigError("%s: must be true or false" % key)
    return cfg


def load(path):
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        raise ConfigError("%s: missing or unreadable" % path)
    try:
        raw = json.loads(text)
    except ValueError:
        raise ConfigError("%s: not valid JSON" % path)
    cfg = validate(raw)
    ca = cfg["mqtt"]["ca"]
    if ca:
        where = path.rsplit("/", 1)[0] + "/" + ca if "/" in path else ca
        try:
            with open(where, "rb") as f:
                cfg["mqtt"]["cadata"] = f.read()
        except OSError:
            raise ConfigError("mqtt.ca: %s missing or unreadable" % ca)
    return cfg


def checked(path):
    """(config, None), or (None, why) when it is missing or invalid."""
    try:
        return load(path), None
    except ConfigError as e:
        return None, e.args[0]
