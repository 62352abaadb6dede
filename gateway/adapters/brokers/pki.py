# The gateway's local CA and the broker's TLS certificate: what to issue and when to renew (pure, `now` in).
from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
BROKER_DAYS = 825
RENEW_DAYS = 60  # at start, a broker certificate with less left than this is replaced
# Why certificates start in 2000: an ESP32 has no clock until NTP answers (a shop LAN may have no NTP at
# all) and mbedTLS refuses a certificate "not yet valid" for a clock at 2000-01-01. The trust comes from
# the pinned CA, whose key never leaves the gateway; the start date adds nothing to it.
NOT_BEFORE = datetime(2000, 1, 1, tzinfo=UTC)

Key = ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class Names:
    """What the broker's certificate must cover: DNS names and IP addresses (as text)."""

    dns: tuple[str, ...]
    ips: tuple[str, ...]

    def all(self) -> tuple[str, ...]:
        return self.dns + self.ips


def broker_names(hostname: str, configured: Iterable[str], addresses: Iterable[str]) -> Names:
    """The names a device may be told to connect to: this machine's host name (and its mDNS `.local`
    form), `localhost`, the configured names (BROKER_NAMES: names or addresses) and the addresses the
    broker listens on. Link-local IPv6 addresses are left out (they need a zone a device cannot name)."""
    dns: list[str] = []
    ips: list[str] = []
    host = hostname.strip().lower().rstrip(".")
    candidates = ["localhost", "127.0.0.1"]
    if host:
        candidates += [host] if "." in host else [host, host + ".local"]
    for item in [*candidates, *configured, *addresses]:
        item = item.strip().lower().rstrip(".")
        if not item:
            continue
        try:
            ip = ipaddress.ip_address(item.split("%", 1)[0])
        except ValueError:
            if item not in dns:
                dns.append(item)
            continue
        if ip.is_link_local or ip.is_unspecified:
            continue
        if str(ip) not in ips:
            ips.append(str(ip))
    return Names(tuple(dns), tuple(ips))


def new_key() -> Key:
    """P-256: a TLS handshake an ESP32 finishes in well under a second (RSA-4096 took 23 s on an RP2040)."""
    return ec.generate_private_key(ec.SECP256R1())


def new_ca(key: Key, now: datetime, label: str = "Hexiao local CA") -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, label)])
    usage = x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(now + timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def issue_broker(
    ca_key: Key, ca_cert: x509.Certificate, key: Key, names: Names, now: datetime
) -> x509.Certificate:
    """A server certificate for `names`, signed by the CA, valid BROKER_DAYS (never past the CA)."""
    san: list[x509.GeneralName] = [x509.DNSName(n) for n in names.dns]
    san += [x509.IPAddress(ipaddress.ip_address(a)) for a in names.ips]
    until = min(now + timedelta(days=BROKER_DAYS), ca_cert.not_valid_after_utc)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names.dns[0] if names.dns else "broker")])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(until)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def san_of(cert: x509.Certificate) -> Names:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return Names((), ())
    dns = tuple(ext.get_values_for_type(x509.DNSName))
    ips = tuple(str(a) for a in ext.get_values_for_type(x509.IPAddress))
    return Names(dns, ips)


def ca_usable(cert: x509.Certificate, key: Key, now: datetime) -> bool:
    """The stored CA still signs: its key matches and it has more than RENEW_DAYS left."""
    return same_key(cert, key) and cert.not_valid_after_utc - now > timedelta(days=RENEW_DAYS)


def same_key(cert: x509.Certificate, key: Key) -> bool:
    """The certificate is for this private key."""
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    return cert.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki)


def broker_reusable(cert: x509.Certificate, ca_cert: x509.Certificate, names: Names, now: datetime) -> bool:
    """Keep the stored broker certificate when this CA signed it, it covers every wanted name and it is
    not about to expire; otherwise a new one is issued (e.g. the LAN address changed)."""
    if cert.issuer != ca_cert.subject:
        return False
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (InvalidSignature, ValueError, TypeError):
        return False
    have = san_of(cert)
    covered = set(names.dns) <= set(have.dns) and set(names.ips) <= set(have.ips)
    return covered and cert.not_valid_after_utc - now > timedelta(days=RENEW_DAYS)


def key_pem(key: Key) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def cert_der(cert: x509.Certificate) -> bytes:
    """What a device stores: MicroPython's `load_verify_locations(cadata=...)` parses DER (its PEM
    parsing needs a NUL-terminated buffer it does not make)."""
    return cert.public_bytes(serialization.Encoding.DER)


def load_key(pem: bytes) -> Key:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("not an EC private key")
    return key
