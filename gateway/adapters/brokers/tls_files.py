# The CA and broker certificate on disk: created on first start, reused on restart, keys 0600.
from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509

from gateway.adapters.brokers import pki
from gateway.adapters.mqtt.acl import write_private

log = logging.getLogger(__name__)

WILDCARDS = ("0.0.0.0", "::", "")


@dataclass(frozen=True)
class BrokerTls:
    """What Mosquitto's TLS listener reads (in its own directory) and what a device is given (the CA)."""

    cafile: Path
    certfile: Path
    keyfile: Path
    ca_pem: str
    ca_der: bytes
    names: pki.Names


def ca_paths(var_dir: Path) -> tuple[Path, Path]:
    """(CA key, CA certificate). The key stays in var/ca/ (0600, the gateway's user only): the broker
    never needs it."""
    d = Path(var_dir) / "ca"
    return d / "ca-key.pem", d / "ca.pem"


def load_or_create_ca(var_dir: Path, now: datetime) -> tuple[pki.Key, x509.Certificate]:
    key_path, cert_path = ca_paths(var_dir)
    if key_path.exists() and cert_path.exists():
        key = pki.load_key(key_path.read_bytes())
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if pki.ca_usable(cert, key, now):
            key_path.chmod(0o600)
            return key, cert
        log.warning("the local CA in %s expires soon or does not match its key: making a new one; "
                    "re-provision every scanner so it trusts the new CA", cert_path.parent)  # fmt: skip
    key = pki.new_key()
    cert = pki.new_ca(key, now)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    cert_path.parent.chmod(0o700)
    write_private(key_path, pki.key_pem(key))
    write_private(cert_path, pki.cert_pem(cert))
    log.info("created the gateway's local CA in %s", cert_path.parent)
    return key, cert


def ensure_broker_tls(
    var_dir: Path,
    broker_dir: Path,
    names: pki.Names,
    now: datetime,
    owner: tuple[int, int] | None = None,
    stem: str = "broker",
) -> BrokerTls:
    """The CA (made once) and a server certificate covering `names` (kept while it does and is not about
    to expire) as `<stem>.pem` / `<stem>-key.pem` in `broker_dir`: the broker's, or (stem "https") the
    console's. The files are 0600 and, with `owner`, belong to the broker's user."""
    ca_key, ca_cert = load_or_create_ca(var_dir, now)
    cafile, certfile, keyfile = (
        broker_dir / "ca.pem",
        broker_dir / f"{stem}.pem",
        broker_dir / f"{stem}-key.pem",
    )
    if _reusable(certfile, keyfile, ca_cert, names, now):
        cert = x509.load_pem_x509_certificate(certfile.read_bytes())
        for path in (keyfile, certfile):
            path.chmod(0o600)
            if owner is not None:
                os.chown(path, *owner)
    else:
        key = pki.new_key()
        cert = pki.issue_broker(ca_key, ca_cert, key, names, now)
        write_private(keyfile, pki.key_pem(key), owner)
        write_private(certfile, pki.cert_pem(cert), owner)
        log.info("issued a TLS certificate (%s) for %s", stem, ", ".join(names.all()))
    write_private(cafile, pki.cert_pem(ca_cert), owner)
    return BrokerTls(cafile, certfile, keyfile, pki.cert_pem(ca_cert).decode(), pki.cert_der(ca_cert),
                     pki.san_of(cert))  # fmt: skip


def _reusable(
    certfile: Path, keyfile: Path, ca_cert: x509.Certificate, names: pki.Names, now: datetime
) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(certfile.read_bytes())
        key = pki.load_key(keyfile.read_bytes())
    except (OSError, ValueError):
        return False
    return pki.same_key(cert, key) and pki.broker_reusable(cert, ca_cert, names, now)


def listen_addresses(bind: str) -> list[str]:
    """The addresses a broker bound to `bind` is reachable at: every interface address for a wildcard
    bind (psutil), else the bind address itself."""
    if bind not in WILDCARDS:
        return [bind]
    import psutil

    out: list[str] = []
    for addrs in psutil.net_if_addrs().values():
        out += [a.address for a in addrs if a.family in (socket.AF_INET, socket.AF_INET6)]
    return out


def wanted_names(bind: str, configured: Iterable[str]) -> pki.Names:
    return pki.broker_names(socket.gethostname(), configured, listen_addresses(bind))
