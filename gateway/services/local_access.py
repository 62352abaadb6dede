# Secret files in the var dir (0600, the gateway's user only) and the local token the CLI and tools use.
from __future__ import annotations

import os
import secrets
from pathlib import Path

LOCAL_PREFIX = "hxl_"
LOCAL_TOKEN_FILE = "local-token"
PIN_KEY_FILE = "pin-key"
OTA_KEY_FILE = "ota-key"


def write_secret(path: Path, text: str) -> None:
    """Write `text` to `path` readable and writable by this user only (0600), atomically: a reader never
    sees a half-written secret, and the file is never world-readable, not even for a moment."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o600)  # O_CREAT's mode is filtered by the umask; the file may also have existed
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def tighten(path: Path) -> None:
    """Make an existing file 0600 (a database and its -wal/-shm, a key); missing files are skipped."""
    try:
        os.chmod(path, 0o600)
    except FileNotFoundError:
        pass


def ensure_local_token(var_dir: Path) -> str:
    """The gateway's local credential: VAR_DIR/local-token, created on first start (0600) and kept
    across restarts, so tools that read it stay valid. Whoever can read the file acts as the owner; the
    file system decides who that is (the gateway's user), not the address a request comes from."""
    path = Path(var_dir) / LOCAL_TOKEN_FILE
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        token = ""
    if not (token.startswith(LOCAL_PREFIX) and len(token) >= 40):
        token = LOCAL_PREFIX + secrets.token_urlsafe(32)
        write_secret(path, token + "\n")
    tighten(path)
    return token


def read_local_token(var_dir: Path) -> str | None:
    """For tools on the gateway's machine: the local token, or None when it cannot be read."""
    try:
        token = (Path(var_dir) / LOCAL_TOKEN_FILE).read_text().strip()
    except OSError:
        return None
    return token if token.startswith(LOCAL_PREFIX) else None


def ensure_key(var_dir: Path, name: str) -> bytes:
    """VAR_DIR/<name>: a 32-byte key (hex, 0600), made on first start and kept across restarts."""
    path = Path(var_dir) / name
    try:
        key = bytes.fromhex(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        key = b""
    if len(key) != 32:
        key = secrets.token_bytes(32)
        write_secret(path, key.hex() + "\n")
    tighten(path)
    return key


def ensure_pin_key(var_dir: Path) -> bytes:
    """VAR_DIR/pin-key: the key of the PIN look-up index. It lives outside the database, so a copied
    database alone gives no cheap way to test PINs (services/pins.py)."""
    return ensure_key(var_dir, PIN_KEY_FILE)


def ensure_ota_key(var_dir: Path) -> bytes:
    """VAR_DIR/ota-key: bundles are signed with it (tools/ota_bundle.py --key-file) and every device's
    manifest key is derived from it (domain/ota.py device_key); outside the database like pin-key."""
    return ensure_key(var_dir, OTA_KEY_FILE)
