# Verifier PINs: set a PIN per person and site, and sign a handheld in or out with it (per-verifier stats).
from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from gateway.adapters.db.engine import writer
from gateway.adapters.db.models import Device, Site, VerifierPin
from gateway.domain.decisions import Decision, system_denial
from gateway.domain.errors import Conflict, ValidationFailed
from gateway.domain.ratelimit import TokenBuckets
from gateway.domain.requests import Place, Request
from gateway.services.places import PlaceCache


def pin_digest(site_id: int, pin: str) -> str:
    # The digest must be deterministic (a PIN alone identifies the verifier at a site), so it cannot be
    # salted per row; scrypt with a per-site salt keeps a stolen database from yielding PINs cheaply.
    return hashlib.scrypt(
        pin.encode(), salt=f"hexiao-pin:{site_id}".encode(), n=2**12, r=8, p=1, dklen=32
    ).hex()


def set_pin(engine: Engine, user: str, site: str, pin: str) -> None:
    if not (pin.isdigit() and 4 <= len(pin) <= 8):
        raise ValidationFailed("a PIN is 4-8 digits", field="pin")
    with engine.connect() as c, writer(c).begin():
        site_id = c.execute(select(Site.id).where(Site.slug == site)).scalar()
        if site_id is None:
            raise ValidationFailed(f"unknown site {site!r}", field="site")
        c.execute(delete(VerifierPin).where(VerifierPin.user == user, VerifierPin.site_id == site_id))
        try:
            with c.begin_nested():
                c.execute(
                    insert(VerifierPin).values(
                        user=user, site_id=site_id, pin_digest=pin_digest(site_id, pin)
                    )
                )
        except IntegrityError as err:
            raise Conflict("another verifier at this site has that PIN; choose another") from err


def sign_in(conn: Connection, device: str, site_id: int | None, pin: str) -> str | None:
    """The verifier whose PIN this is at the device's site, now signed in on it; None for a wrong PIN."""
    if site_id is None:
        return None
    user = conn.execute(
        select(VerifierPin.user).where(
            VerifierPin.site_id == site_id, VerifierPin.pin_digest == pin_digest(site_id, pin)
        )
    ).scalar()
    if user is not None:
        conn.execute(update(Device).where(Device.device_id == device).values(user=user))
    return user


def sign_out(conn: Connection, device: str) -> None:
    conn.execute(update(Device).where(Device.device_id == device).values(user=None))


def signed_in(conn: Connection, device: str) -> Any:
    return conn.execute(select(Device.user).where(Device.device_id == device)).scalar()


def sign(
    conn: Connection, req: Request, place: Place, places: PlaceCache, limits: TokenBuckets, mono: float
) -> Decision:
    """Sign a verifier in (by PIN) or out on a handheld; the device's later scans carry their name.

    Wrong PINs are rate-limited per device (`limits`): a 4-digit PIN can't be walked through by a script.
    """
    if req.op == "logout":
        sign_out(conn, req.device)
        places.signed(req.device, place, None)
        return Decision(True, "OK", 0, None, "SIGNED OUT", "", "signed out")
    if not limits.allow(req.device, mono):
        return system_denial("RATE_LIMITED", "too many PIN attempts; wait a minute")
    user = sign_in(conn, req.device, place.site_id, req.pin or "")
    if user is None:
        return system_denial("BAD_PIN", "no verifier has this PIN at this site")
    places.signed(req.device, place, user)
    return Decision(True, "OK", 0, None, "HELLO " + user.upper(), "signed in", f"signed in as {user}")
