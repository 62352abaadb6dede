# The device's config.json (see INTERFACES.md / firmware/hx/config.py): build it, check it, mask its secrets.
from __future__ import annotations

import ipaddress
import json
import re
import socket
from dataclasses import dataclass
from typing import Any

from tools.provision.errors import UsageError

DEVICE_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
MODES = ("handheld", "turnstile")
SECRET_KEYS = (("mqtt", "password"), ("wifi", "password"))
TOP_KEYS = {
    "device", "site", "gate", "mode", "board", "dir", "mqtt", "wifi", "heartbeat_s", "dedupe_ms",
    "outbox_max", "inflight", "retry_ms", "verdict_timeout_ms", "result_ms", "relay_ms",
    "scanner_mode", "same_code_s", "pick", "pick_ms", "turn_sensor", "turn_ms",
    "camera",  # camera boards (docs/firmware.md "Camera boards"); the firmware checks its fields
    "ota_key",  # the device's over-the-air update key (hex), from the gateway's provisioning answer
}  # fmt: skip
MQTT_KEYS = {"host", "port", "user", "password", "keepalive", "ca", "addr"}
CA_FILE = "ca.der"  # the gateway's CA next to config.json: the firmware connects over TLS and pins it
WIFI_KEYS = {"ssid", "password"}


@dataclass(frozen=True)
class Placement:
    """Who the device is and where it stands, as the store manager typed it."""

    device: str
    site: str
    gate: str
    mode: str
    board: str
    pick: bool = True  # handhelds: check, let the verifier pick the quantity/amount, then redeem
    turn_sensor: bool = False  # turnstiles: annul an OK the turnstile did not turn for

    def check(self) -> None:
        if not DEVICE_RE.match(self.device):
            raise UsageError(
                f"device id {self.device!r} is not valid", "use 1-32 letters, digits, '-' or '_', e.g. gate-3"
            )
        if not self.site or len(self.site) > 32:
            raise UsageError("--site is required (at most 32 characters)")
        if len(self.gate) > 32:
            raise UsageError("--gate: at most 32 characters (it is shown on the device)")
        if self.mode not in MODES:
            raise UsageError(f"--mode must be one of {', '.join(MODES)}")


def build_config(
    p: Placement,
    mqtt_host: str,
    mqtt_port: int,
    username: str | None,
    password: str | None,
    wifi_ssid: str,
    wifi_password: str,
    heartbeat_s: int = 60,
    tls: bool = False,
    addr: str | None = None,
    ota_key: str | None = None,
) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "device": p.device,
        "site": p.site,
        "gate": p.gate or p.device,
        "mode": p.mode,
        "board": p.board,
        "mqtt": {
            "host": mqtt_host,
            "port": mqtt_port,
            "user": username,
            "password": password,
            "keepalive": 30,
            **({"ca": CA_FILE} if tls else {}),
            **({"addr": addr} if addr else {}),
        },
        "wifi": {"ssid": wifi_ssid, "password": wifi_password},
        "heartbeat_s": heartbeat_s,
    }
    if ota_key:
        cfg["ota_key"] = ota_key
    if p.mode == "handheld":
        cfg["pick"] = p.pick
    elif p.turn_sensor:
        cfg["turn_sensor"] = True
    check_config(cfg)
    return cfg


def broker_addr(host: str) -> str | None:
    """The broker's IPv4 address for a host name, looked up here at provisioning time (None when `host`
    is an address already): on the device a DNS lookup would block the event loop, so it connects to
    this address and keeps the name for the TLS check (docs/firmware.md "MQTT client")."""
    try:
        ipaddress.IPv4Address(host)
        return None
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, socket.AF_INET, socket.SOCK_STREAM)
    except OSError as err:
        raise UsageError(
            f"the broker host {host!r} does not resolve here: {err}",
            "give the broker's IP address (--broker-host 192.168.1.10), or provision on the shop's network",
        ) from err
    return str(infos[0][4][0])


def check_config(cfg: Any) -> None:
    """The checks the firmware would make at boot, so a bad file is refused before it reaches the device."""
    if not isinstance(cfg, dict):
        raise UsageError("config must be a JSON object")
    unknown = set(cfg) - TOP_KEYS
    if unknown:
        raise UsageError(f"config has unknown keys: {', '.join(sorted(unknown))}")
    if not isinstance(cfg.get("device"), str) or not DEVICE_RE.match(cfg["device"]):
        raise UsageError("config.device: 1-32 letters, digits, '-' or '_'")
    mqtt = cfg.get("mqtt")
    if not isinstance(mqtt, dict) or set(mqtt) - MQTT_KEYS:
        raise UsageError("config.mqtt: an object with host, port, user, password, keepalive")
    if not isinstance(mqtt.get("host"), str) or not mqtt["host"]:
        raise UsageError("config.mqtt.host: required")
    if mqtt.get("addr") is not None:  # null is the firmware's default (no address given)
        try:
            if not isinstance(mqtt["addr"], str):  # ipaddress also takes an int: the firmware does not
                raise ValueError(mqtt["addr"])
            ipaddress.IPv4Address(mqtt["addr"])
        except ValueError as err:
            raise UsageError("config.mqtt.addr: an IPv4 address (the broker's, when host is a name)") from err
    port = mqtt.get("port")
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise UsageError("config.mqtt.port: 1-65535")
    wifi = cfg.get("wifi", {})
    if not isinstance(wifi, dict) or set(wifi) - WIFI_KEYS:
        raise UsageError("config.wifi: an object with ssid and password")
    if len(str(wifi.get("ssid", ""))) > 32 or len(str(wifi.get("password", ""))) > 64:
        raise UsageError("config.wifi: ssid at most 32, password at most 64 characters")
    if cfg.get("mode", "handheld") not in MODES:
        raise UsageError(f"config.mode: one of {', '.join(MODES)}")


def ca_der(broker: dict[str, Any]) -> bytes | None:
    """The gateway's CA certificate (sent as PEM by /api/fleet/broker) in the DER form the firmware
    loads; None when the broker has no TLS listener (it serves loopback only)."""
    pem = broker.get("ca_pem")
    if not broker.get("tls") or not isinstance(pem, str):
        return None
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        return x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)
    except ValueError as err:
        raise UsageError(f"the gateway sent a CA certificate that does not parse: {err}") from err


def masked(cfg: dict[str, Any]) -> dict[str, Any]:
    """A copy safe to print or log: every secret replaced by a marker saying whether one is set."""
    out: dict[str, Any] = json.loads(json.dumps(cfg))
    for section, key in SECRET_KEYS:
        sub = out.get(section)
        if isinstance(sub, dict) and key in sub:
            sub[key] = "(set)" if sub[key] else "(none)"
    if "ota_key" in out:  # a top-level secret: the key this device checks update manifests with
        out["ota_key"] = "(set)" if out["ota_key"] else "(none)"
    return out


def encode(cfg: dict[str, Any]) -> bytes:
    return (json.dumps(cfg, indent=1, sort_keys=True) + "\n").encode()
