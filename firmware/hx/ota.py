# Over-the-air update, device side: a bundle (manifest of files with size + SHA-256, signed with
# HMAC-SHA256 under the device's OTA key) is downloaded in chunks into the free slot, every file is
# verified, and only then is the slot put on trial for the next boot (slots.py rolls it back if that
# boot never becomes stable). Loaded for one update (hx.lazy), unloaded after.
import binascii
import hashlib
import json
import os

import slots

CHUNK = 1024  # bytes per fetch: one chunk in RAM at a time


class OtaError(Exception):
    pass


def hmac_sha256(key, msg):
    """HMAC-SHA256 (RFC 2104): MicroPython has hashlib.sha256 but no hmac module."""
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key + bytes(64 - len(key))
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    inner.update(msg)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    outer.update(inner.digest())
    return outer.digest()


def check_manifest(raw, sig_hex, key):
    """The manifest as a dict, or OtaError: signed with `key`, files under hx/ with size and sha256."""
    try:
        got = binascii.unhexlify(sig_hex)
    except ValueError:
        raise OtaError("bad signature")
    want = hmac_sha256(key, raw)
    diff = len(want) ^ len(got)
    for a, b in zip(want, got):
        diff |= a ^ b  # every byte compared: no early exit to time
    if diff:
        raise OtaError("bad signature")
    try:
        m = json.loads(raw)
        files = m["files"]
        if not isinstance(m["version"], str) or not isinstance(files, dict) or not files:
            raise ValueError
        for path in files:
            info = files[path]
            if not path.startswith("hx/") or ".." in path or not path.endswith((".mpy", ".py")):
                raise ValueError
            if not isinstance(info["size"], int) or len(info["sha256"]) != 64:
                raise ValueError
    except (ValueError, KeyError, TypeError):
        raise OtaError("bad manifest")
    return m


def rmtree(path):
    try:
        names = os.listdir(path)
    except OSError:
        return
    for n in names:
        p = path + "/" + n
        if os.stat(p)[0] & 0x4000:
            rmtree(p)
        else:
            os.remove(p)
    os.rmdir(path)


def _mkdirs(path):
    cur = None
    for part in path.split("/"):
        cur = part if cur is None else cur + "/" + part
        if part:
            try:
                os.mkdir(cur)
            except OSError:
                pass


async def install(flash, raw, sig_hex, key, fetch):
    """Download and verify bundle `raw` (its manifest) into the free slot; `await fetch(path, offset,
    n)` returns up to n bytes of a file. On success the slot is on trial from the next boot; returns
    its name. On any error nothing changes but the free slot's contents (OtaError says why)."""
    m = check_manifest(raw, sig_hex, key)
    st = slots.read(flash)
    cur = st.get("active")
    slot = "b" if cur == "a" else "a"
    root = flash + "/slots/" + slot
    rmtree(root)
    files = m["files"]
    for path in sorted(files):
        info = files[path]
        _mkdirs((root + "/" + path).rsplit("/", 1)[0])
        h = hashlib.sha256()
        off = 0
        with open(root + "/" + path, "wb") as f:
            while off < info["size"]:
                chunk = await fetch(path, off, min(CHUNK, info["size"] - off))
                if not chunk:
                    raise OtaError("short download: " + path)
                f.write(chunk)
                h.update(chunk)
                off += len(chunk)
        if binascii.hexlify(h.digest()).decode() != info["sha256"] or off != info["size"]:
            raise OtaError("hash mismatch: " + path)
    with open(root + "/version", "w") as f:
        f.write(m["version"])
    st["active"] = slot
    st["trial"] = {"slot": slot, "prev": cur, "boots": 0, "version": m["version"]}
    st.pop("rolled_back", None)
    slots.write(flash, st)
    return slot
