# Over-the-air update rules: a bundle's manifest checked as the firmware checks it, its signatures, the
# per-device keys, and how a device's status moves its rollout along (pure; hx/ota.py is the device side).
from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any

MAX_BUNDLE = 2 * 1024 * 1024  # bytes of an uploaded archive: the hx package is ~150 KB compiled
MAX_FILES = 64
MAX_MANIFEST = 16 * 1024
# Bytes per chunk the gateway serves: the firmware takes one MQTT packet of at most 2 KB (hx/mqtt.py
# MAX_PACKET), header line included, and hashes/writes one chunk at a time (hx/ota.py CHUNK).
CHUNK_MAX = 1024
VERSION_RE = re.compile(r"^[A-Za-z0-9._+-]{1,32}$")
PATH_RE = re.compile(r"^hx/[A-Za-z0-9_/]{1,96}\.(mpy|py)$")
SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_DEVICE_KEY_LABEL = b"hexiao-ota-device-key:"

# Rollout states. A terminal one is never offered again (a rolled-back device must not loop on C).
PENDING, DOWNLOADING, INSTALLED, TRIAL = "pending", "downloading", "installed", "trial"
CONFIRMED, ROLLED_BACK, FAILED = "confirmed", "rolled_back", "failed"
TERMINAL = frozenset({CONFIRMED, ROLLED_BACK, FAILED})
ALARMING = frozenset({ROLLED_BACK, FAILED})
STATES = (PENDING, DOWNLOADING, INSTALLED, TRIAL, CONFIRMED, ROLLED_BACK, FAILED)
# Order of the running states: statuses come duplicated and out of order (QoS 1, retained, queued), so a
# report never moves a roll-out back (a late "downloading" after "installed" is old news).
_RANK = {PENDING: 0, DOWNLOADING: 1, INSTALLED: 2, TRIAL: 3}


class BundleError(ValueError):
    """A bundle that is not what the firmware would accept: the message says which part."""


@dataclass(frozen=True, slots=True)
class Manifest:
    version: str
    files: dict[str, tuple[int, str]]  # path -> (size, sha256 hex)
    raw: bytes  # the exact signed bytes (the signature covers these, not a re-encoding)

    @property
    def total(self) -> int:
        return sum(size for size, _ in self.files.values())


def sign(key: bytes, raw: bytes) -> str:
    return hmac.new(key, raw, hashlib.sha256).hexdigest()


def signed_by(key: bytes, raw: bytes, sig_hex: str) -> bool:
    return hmac.compare_digest(sign(key, raw), sig_hex.strip().lower())


def device_key(master: bytes, device: str) -> bytes:
    """The key device `device` checks its manifests with. Derived, not shared: a key read out of one
    scanner's flash signs nothing for the others (nor anything the gateway would accept on upload)."""
    return hmac.new(master, _DEVICE_KEY_LABEL + device.encode(), hashlib.sha256).digest()


def parse_manifest(raw: bytes) -> Manifest:
    """The manifest's rules as hx/ota.py check_manifest applies them, plus bounds the gateway needs."""
    if len(raw) > MAX_MANIFEST:
        raise BundleError(f"manifest.json: over {MAX_MANIFEST} bytes")
    try:
        doc: Any = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as err:
        raise BundleError("manifest.json: not JSON") from err
    if not isinstance(doc, dict) or set(doc) != {"version", "files"}:
        raise BundleError("manifest.json: an object with exactly version and files")
    version, files = doc["version"], doc["files"]
    if not isinstance(version, str) or not VERSION_RE.match(version):
        raise BundleError("manifest.version: 1-32 of A-Z a-z 0-9 . _ + -")
    if not isinstance(files, dict) or not 0 < len(files) <= MAX_FILES:
        raise BundleError(f"manifest.files: 1-{MAX_FILES} files")
    out: dict[str, tuple[int, str]] = {}
    for path, info in files.items():
        if not PATH_RE.match(path) or ".." in path or "//" in path:
            raise BundleError(f"manifest.files: {path[:100]!r} is not a file of the hx package")
        size = info.get("size") if isinstance(info, dict) else None
        sha = info.get("sha256") if isinstance(info, dict) else None
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_BUNDLE:
            raise BundleError(f"manifest.files[{path}].size: a byte count")
        if not isinstance(sha, str) or not SHA_RE.match(sha):
            raise BundleError(f"manifest.files[{path}].sha256: 64 lower-case hex digits")
        out[path] = (size, sha)
    if "hx/__init__.mpy" not in out and "hx/__init__.py" not in out:
        raise BundleError("manifest.files: the hx package needs its __init__")
    return Manifest(version, out, raw)


def check_bundle(members: dict[str, bytes], master: bytes) -> Manifest:
    """A complete bundle (archive members by name): signed with the gateway's key, every file present
    with its size and SHA-256, nothing else in it. Returns the manifest."""
    raw, sig = members.get("manifest.json"), members.get("manifest.sig")
    if raw is None or sig is None:
        raise BundleError("the archive needs manifest.json and manifest.sig (python -m tools.ota_bundle)")
    try:
        sig_hex = sig.decode("ascii")
    except UnicodeDecodeError as err:
        raise BundleError("manifest.sig: hex text") from err
    if not signed_by(master, raw, sig_hex):
        raise BundleError("manifest.sig: not signed with this gateway's OTA key (VAR_DIR/ota-key)")
    m = parse_manifest(raw)
    extra = set(members) - set(m.files) - {"manifest.json", "manifest.sig"}
    if extra:
        raise BundleError(f"files not in the manifest: {', '.join(sorted(extra)[:5])}")
    for path, (size, sha) in m.files.items():
        data = members.get(path)
        if data is None:
            raise BundleError(f"{path}: listed in the manifest, missing from the archive")
        if len(data) != size or hashlib.sha256(data).hexdigest() != sha:
            raise BundleError(f"{path}: size or SHA-256 differs from the manifest")
    return m


@dataclass(frozen=True, slots=True)
class Rollout:
    """A device's current roll-out as stored."""

    device: str
    version: str
    state: str
    done: int = 0
    total: int = 0
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Progress:
    """A rollout's state after a device's report: state, bytes done of total, why (failures)."""

    state: str
    done: int = 0
    total: int = 0
    detail: str = ""


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else 0


def progress(state: str, target: str, fw: Any, ota: Any) -> Progress | None:
    """What a device's status (its running firmware `fw`, its `ota` report) means for a rollout of
    `target` now in `state`; None when nothing changes. A finished rollout never changes again."""
    if state in TERMINAL:
        return None
    doc = ota if isinstance(ota, dict) else {}
    mine = doc.get("ver") == target
    kind = doc.get("state") if mine else None
    why = str(doc.get("why") or "")[:200]
    if kind == ROLLED_BACK:
        return Progress(ROLLED_BACK, detail=why or "rolled back")
    if kind == FAILED:
        # Still pending = nothing served yet in this roll-out: a failure of an earlier one of the same
        # version (the device kept that report while off line); the device is offered it again.
        return Progress(FAILED, detail=why or "failed") if state != PENDING else None
    if fw == target:
        p = Progress(TRIAL) if kind == TRIAL else Progress(CONFIRMED)
    elif kind == DOWNLOADING:
        p = Progress(DOWNLOADING, _int(doc.get("done")), _int(doc.get("total")))
    elif kind == INSTALLED:
        p = Progress(INSTALLED)
    else:
        return None
    return p if p.state in TERMINAL or _RANK[p.state] >= _RANK[state] else None


def wants_offer(state: str, ota: Any) -> bool:
    """Offer (again) when the device is on line and not busy with this update: a device that lost its
    link or restarted mid-download resumes from what it already has on flash."""
    if state not in (PENDING, DOWNLOADING):
        return False
    doc = ota if isinstance(ota, dict) else {}
    return doc.get("state") not in (DOWNLOADING, INSTALLED)
