# The local CA and the broker certificate (names, expiry, reuse on restart, file modes) and the
# mosquitto.conf rules (TLS off loopback, no anonymous LAN listener).
from __future__ import annotations

import ipaddress
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from gateway.adapters.brokers import pki
from gateway.adapters.brokers.mosquitto_conf import BrokerConf, TlsListener, render
from gateway.adapters.brokers.run_as import can_traverse
from gateway.adapters.brokers.tls_files import ca_paths, ensure_broker_tls
from gateway.domain.errors import ConfigError

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
NAMES = pki.broker_names(
    "shop-gw", ["gw.example.lan", "10.0.0.5"], ["192.168.1.20", "fe80::1%eth0", "0.0.0.0"]
)


def test_names_cover_host_mdns_configured_and_listen_addresses() -> None:
    assert NAMES.dns == ("localhost", "shop-gw", "shop-gw.local", "gw.example.lan")
    assert NAMES.ips == ("127.0.0.1", "10.0.0.5", "192.168.1.20")  # link-local and wildcard left out
    fq = pki.broker_names("Gw.Shop.Lan.", [], ["::1"])
    assert fq.dns == ("localhost", "gw.shop.lan") and fq.ips == ("127.0.0.1", "::1")


def test_issued_certificate_names_expiry_and_chain(tmp_path: Path) -> None:
    tls = ensure_broker_tls(tmp_path / "var", tmp_path / "var" / "mosquitto", NAMES, NOW)
    cert = x509.load_pem_x509_certificate(tls.certfile.read_bytes())
    ca = x509.load_pem_x509_certificate(tls.ca_pem.encode())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == set(NAMES.dns)
    assert set(san.get_values_for_type(x509.IPAddress)) == {ipaddress.ip_address(a) for a in NAMES.ips}
    assert tls.names.all() == NAMES.all()
    cert.verify_directly_issued_by(ca)
    assert cert.not_valid_after_utc == NOW + timedelta(days=pki.BROKER_DAYS)
    assert ca.not_valid_after_utc == NOW + timedelta(days=pki.CA_DAYS)
    assert cert.not_valid_before_utc == pki.NOT_BEFORE == ca.not_valid_before_utc  # an ESP32 before NTP
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert x509.load_der_x509_certificate(tls.ca_der) == ca  # what a device is given


def test_modes_and_reuse_on_restart(tmp_path: Path) -> None:
    var, broker = tmp_path / "var", tmp_path / "var" / "mosquitto"
    first = ensure_broker_tls(var, broker, NAMES, NOW)
    ca_key, ca_cert = ca_paths(var)
    for path in (ca_key, ca_cert, first.keyfile, first.certfile, first.cafile):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(ca_key.parent.stat().st_mode) == 0o700
    key_bytes, cert_bytes = ca_key.read_bytes(), first.certfile.read_bytes()
    # A restart a year later: same CA, same broker certificate (devices keep trusting it).
    ca_key.chmod(0o644)
    again = ensure_broker_tls(var, broker, NAMES, NOW + timedelta(days=365))
    assert ca_key.read_bytes() == key_bytes and again.certfile.read_bytes() == cert_bytes
    assert again.ca_der == first.ca_der and stat.S_IMODE(ca_key.stat().st_mode) == 0o600
    # A new LAN address: a new broker certificate from the same CA.
    moved = pki.broker_names("shop-gw", [], ["192.168.1.77"])
    renewed = ensure_broker_tls(var, broker, moved, NOW)
    renewed_bytes = renewed.certfile.read_bytes()
    assert renewed_bytes != cert_bytes and renewed.ca_der == first.ca_der
    assert "192.168.1.77" in renewed.names.ips
    # Close to expiry: renewed; the CA stays.
    late = NOW + timedelta(days=pki.BROKER_DAYS - pki.RENEW_DAYS + 1)
    assert ensure_broker_tls(var, broker, moved, late).certfile.read_bytes() != renewed_bytes
    assert ca_key.read_bytes() == key_bytes


def test_a_certificate_from_another_ca_is_not_reused(tmp_path: Path) -> None:
    var, broker = tmp_path / "var", tmp_path / "var" / "mosquitto"
    ensure_broker_tls(var, broker, NAMES, NOW)
    for p in ca_paths(var):
        p.unlink()
    fresh = ensure_broker_tls(var, broker, NAMES, NOW)
    cert = x509.load_pem_x509_certificate(fresh.certfile.read_bytes())
    cert.verify_directly_issued_by(x509.load_der_x509_certificate(fresh.ca_der))


def conf(**kw: object) -> BrokerConf:
    base: dict[str, object] = {"port": 1884, "bind": "127.0.0.1", "workdir": Path("/w")}
    base.update(kw)
    return BrokerConf(**base)  # type: ignore[arg-type]


TLS = TlsListener(8883, "0.0.0.0", Path("/w/ca.pem"), Path("/w/broker.pem"), Path("/w/broker-key.pem"))


def test_conf_lan_is_tls_with_logins_plaintext_on_loopback() -> None:
    text = render(conf(password_file=Path("/w/passwd"), acl_file=Path("/w/acl"), tls=TLS, user="mosquitto"))
    lines = text.splitlines()
    assert "listener 1884 127.0.0.1" in lines and "listener 8883 0.0.0.0" in lines
    assert lines.index("listener 8883 0.0.0.0") < lines.index("certfile /w/broker.pem")
    assert {
        "cafile /w/ca.pem",
        "keyfile /w/broker-key.pem",
        "allow_anonymous false",
        "user mosquitto",
    } <= set(lines)
    assert "acl_file /w/acl" in lines and "allow_anonymous true" not in lines


def test_conf_refuses_anonymous_or_plaintext_lan() -> None:
    with pytest.raises(ConfigError, match="per-device logins"):
        render(conf(tls=TLS))
    with pytest.raises(ConfigError, match="per-device logins"):
        render(conf(bind="0.0.0.0"))
    with pytest.raises(ConfigError, match="plaintext"):
        render(conf(bind="0.0.0.0", password_file=Path("/w/passwd"), tls=TLS))
    assert "allow_anonymous true" in render(conf())  # loopback only: the simulator's open demo broker


def test_traversal_rule() -> None:
    assert can_traverse(0o711, 0, 0, 105, {108})
    assert not can_traverse(0o700, 0, 0, 105, {108})
    assert can_traverse(0o710, 0, 108, 105, {108})
    assert can_traverse(0o700, 105, 0, 105, {108})
