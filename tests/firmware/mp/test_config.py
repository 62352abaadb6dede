# Unit tests of hx.config: defaults, validation errors, file loading.
from hx.config import ConfigError, load, validate

import t


def test_defaults_filled():
    c = validate({"device": "dev-1"})
    t.eq(c["mode"], "handheld")
    t.eq(c["mqtt"]["port"], 1883)
    t.eq(c["mqtt"]["keepalive"], 30)
    t.eq(c["heartbeat_s"], 60)
    t.eq(c["wifi"], {"ssid": "", "password": ""})


def test_interfaces_example_is_valid():
    c = validate(
        {
            "device": "dev-1",
            "site": "demo",
            "gate": "Gate 1",
            "mode": "turnstile",
            "board": "esp32-devkitc",
            "mqtt": {"host": "10.0.0.2", "port": 1884, "user": None, "password": None, "keepalive": 30},
            "wifi": {"ssid": "shop", "password": "pw"},
            "heartbeat_s": 60,
        }
    )
    t.eq(c["mode"], "turnstile")
    t.eq(c["mqtt"]["host"], "10.0.0.2")
    t.eq(c["wifi"]["ssid"], "shop")


def test_ca_file_is_read_next_to_the_config():
    d = t.tmpdir()
    with open(d + "/config.json", "w") as f:
        f.write('{"device": "x1", "mqtt": {"host": "10.0.0.2", "port": 8883, "ca": "ca.der"}}')
    t.true("ca.der" in t.raises(ConfigError, load, d + "/config.json").args[0], "missing CA file")
    with open(d + "/ca.der", "wb") as f:
        f.write(b"\x30\x82der")
    t.eq(load(d + "/config.json")["mqtt"]["cadata"], b"\x30\x82der")
    t.true("cadata" not in load_plain(d), "no CA: plaintext")
    t.true(
        "mqtt.ca" in t.raises(ConfigError, validate, {"device": "d", "mqtt": {"ca": 5}}).args[0], "ca type"
    )


def load_plain(d):
    with open(d + "/plain.json", "w") as f:
        f.write('{"device": "x2"}')
    return load(d + "/plain.json")["mqtt"]


def test_defaults_not_shared():
    a = validate({"device": "a", "mqtt": {"port": 1}})
    b = validate({"device": "b"})
    t.eq(a["mqtt"]["port"], 1)
    t.eq(b["mqtt"]["port"], 1883)


def _err(raw):
    return t.raises(ConfigError, validate, raw).args[0]


def test_errors_name_the_key():
    t.true("device" in _err({}), "device required")
    t.true("device" in _err({"device": "has space"}), "device charset")
    t.true("device" in _err({"device": "x" * 33}), "device length")
    t.true("mqtt.port" in _err({"device": "d", "mqtt": {"port": 70000}}), "port range")
    t.true("mqtt.port" in _err({"device": "d", "mqtt": {"port": "1883"}}), "port type")
    t.true("mqtt.port" in _err({"device": "d", "mqtt": {"port": True}}), "bool is not int")
    t.true("mode" in _err({"device": "d", "mode": "gate"}), "mode")
    t.true("heartbeat" in _err({"device": "d", "heartbeat": 5}), "unknown key (typo)")
    t.true("mqtt.hots" in _err({"device": "d", "mqtt": {"hots": "x"}}), "unknown sub key")
    t.true("mqtt" in _err({"device": "d", "mqtt": 5}), "mqtt object")
    t.true("object" in _err([1]), "not an object")
    t.true("dir" in _err({"device": "d", "dir": "up"}), "dir")


def test_load_file():
    d = t.tmpdir()
    with open(d + "/config.json", "w") as f:
        f.write('{"device": "x1", "mode": "turnstile"}')
    t.eq(load(d + "/config.json")["mode"], "turnstile")
    t.true("missing" in t.raises(ConfigError, load, d + "/nope.json").args[0], "missing file")
    with open(d + "/bad.json", "w") as f:
        f.write("{not json")
    t.true("JSON" in t.raises(ConfigError, load, d + "/bad.json").args[0], "bad json")


def test_pick_and_turn_sensor_keys():
    c = validate({"device": "dev-1"})
    t.eq((c["pick"], c["pick_ms"], c["turn_sensor"], c["turn_ms"]), (False, 20000, False, 8000))
    c = validate({"device": "dev-1", "pick": True, "turn_sensor": True, "turn_ms": 5000})
    t.eq((c["pick"], c["turn_sensor"], c["turn_ms"]), (True, True, 5000))
    t.true(str(t.raises(ConfigError, validate, {"device": "d", "pick": 1})).startswith("pick:"))
    t.true(
        str(t.raises(ConfigError, validate, {"device": "d", "turn_sensor": "yes"})).startswith("turn_sensor:")
    )
    t.true(str(t.raises(ConfigError, validate, {"device": "d", "turn_ms": 500})).startswith("turn_ms:"))
    t.true(str(t.raises(ConfigError, validate, {"device": "d", "pick_ms": 10})).startswith("pick_ms:"))


def test_broker_address_beside_a_host_name():
    c = validate({"device": "x1", "mqtt": {"host": "gw.shop.lan", "addr": "192.168.1.10"}})
    t.eq((c["mqtt"]["host"], c["mqtt"]["addr"]), ("gw.shop.lan", "192.168.1.10"))
    t.eq(validate({"device": "x1"})["mqtt"]["addr"], None, "no address: none looked up")
    for bad in ("gw.shop.lan", "192.168.1", "192.168.1.300", 5):
        e = t.raises(ConfigError, validate, {"device": "x1", "mqtt": {"host": "gw", "addr": bad}})
        t.true("mqtt.addr" in e.args[0], e.args[0])
