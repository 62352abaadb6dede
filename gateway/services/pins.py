# Verifier PINs: set a PIN per person and site, and sign a handheld in or out with it (per-verifier stats).
from __future__ import annotations

import hashlib
import hmac

from gateway.domain.decisions import Decision, system_denial
from gateway.domain.errors import Conflict, ValidationFailed
from gateway.domain.passwords import hash_password, verify_password
from gateway.domain.pins import PinRow
from gateway.domain.ratelimit import TokenBuckets
from gateway.domain.requests import Place, Request
from gateway.services.places import PlaceCache
from gateway.services.ports.database import Database, Tx


def legacy_digest(site_id: int, pin: str) -> str:
    """The deterministic per-site digest PINs had before migration 0007: only to recognise such rows."""
    return hashlib.scrypt(
        pin.encode(), salt=f"hexiao-pin:{site_id}".encode(), n=2**12, r=8, p=1, dklen=32
    ).hex()


def pin_index(key: bytes, site_id: int, pin: str) -> str:
    """The look-up index of a PIN at a site: keyed with VAR_DIR/pin-key, which is not in the database,
    so the index tells a copied database nothing; with it a sign-in checks one slow hash, not one per
    verifier of the site (each ~30 ms, on the redemption service's thread)."""
    return hmac.new(key, f"{site_id}:{pin}".encode(), hashlib.sha256).hexdigest()


def _holder(rows: list[PinRow], site_id: int, pin: str, index: str) -> PinRow | None:
    """The row whose PIN this is: the indexed one (one slow hash), else an unindexed row (older ones,
    each checked; the pre-0007 digest is computed once, only if a row needs it)."""
    for r in rows:
        if r.pin_index == index and r.pin_hash is not None and verify_password(pin, r.pin_hash):
            return r
    legacy = legacy_digest(site_id, pin) if any(r.pin_hash is None for r in rows) else None
    for r in rows:
        if r.pin_index is not None:
            continue
        if r.pin_hash is not None and verify_password(pin, r.pin_hash):
            return r
        if r.pin_hash is None and legacy is not None and hmac.compare_digest(r.pin_digest or "", legacy):
            return r
    return None


def set_pin(db: Database, user: str, site: str, pin: str, key: bytes) -> None:
    if not (pin.isdigit() and 4 <= len(pin) <= 8):
        raise ValidationFailed("a PIN is 4-8 digits", field="pin")
    with db.write() as tx:  # the writer lock makes the uniqueness check hold
        site_id = tx.sites.ids().get(site)
        if site_id is None:
            raise ValidationFailed(f"unknown site {site!r}", field="site")
        index = pin_index(key, site_id, pin)
        others = [r for r in tx.pins.at_site(site_id, index) if r.user != user]
        if _holder(others, site_id, pin, index) is not None:
            raise Conflict("another verifier at this site has that PIN; choose another")
        tx.pins.replace(user, site_id, hash_password(pin), index)


def sign_in(tx: Tx, device: str, site_id: int | None, pin: str, key: bytes) -> str | None:
    """The verifier whose PIN this is at the device's site, now signed in on it; None for a wrong PIN.
    A PIN stored the old way (no salt of its own, or no index yet) is stored anew now that it is known."""
    if site_id is None:
        return None
    index = pin_index(key, site_id, pin)
    row = _holder(tx.pins.at_site(site_id, index), site_id, pin, index)
    if row is None:
        return None
    if row.pin_hash is None or row.pin_index is None:
        tx.pins.upgrade(row.id, row.pin_hash or hash_password(pin), index)
    tx.devices.sign(device, row.user)
    return str(row.user)


def sign_out(tx: Tx, device: str) -> None:
    tx.devices.sign(device, None)


def signed_in(tx: Tx, device: str) -> str | None:
    return tx.devices.signed_in(device)


def sign(
    tx: Tx,
    req: Request,
    place: Place,
    places: PlaceCache,
    limits: TokenBuckets,
    mono: float,
    key: bytes,
) -> Decision:
    """Sign a verifier in (by PIN) or out on a handheld; the device's later scans carry their name.

    Wrong PINs are rate-limited per device (`limits`): a 4-digit PIN can't be walked through by a script.
    """
    if req.op == "logout":
        sign_out(tx, req.device)
        places.signed(req.device, place, None)
        return Decision(True, "OK", 0, None, "SIGNED OUT", "", "signed out")
    if not limits.allow(req.device, mono):
        return system_denial("RATE_LIMITED", "too many PIN attempts; wait a minute")
    user = sign_in(tx, req.device, place.site_id, req.pin or "", key)
    if user is None:
        return system_denial("BAD_PIN", "no verifier has this PIN at this site")
    places.signed(req.device, place, user)
    return Decision(True, "OK", 0, None, "HELLO " + user.upper(), "signed in", f"signed in as {user}")
