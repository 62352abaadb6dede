# Over-the-air update, device side: a bundle (manifest of files with size + SHA-256, signed with
# HMAC-SHA256 under the device's OTA key) is downloaded in chunks into the free slot, every file is
# verified, and only then is the slot put on trial for the next boot (slots.py rolls it back if that
# boot never becomes stable). Loaded when the gateway offers an update (App.on_ota), not before.
import asyncio
import binascii
import hashlib
import json
import os
import time

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


def _hash_file(path, h):
    """Feed what a partial download already wrote into `h`; its length (0 when there is none)."""
    n = 0
    try:
        with open(path, "rb") as f:
            while True:
                b = f.read(256)
                if not b:
                    return n
                h.update(b)
                n += len(b)
    except OSError:
        return 0


def _same(path, raw):
    try:
        with open(path, "rb") as f:
            return f.read() == raw
    except OSError:
        return False


async def download(flash, m, raw, fetch, progress=None):
    """Every file of manifest `m` (its bytes: `raw`) into the free slot, hashed as written. A download
    of the same manifest that was cut off (link lost, power cut) resumes where its files end: what is
    on flash is hashed again, never trusted. Returns the slot's name; OtaError on a mismatch."""
    st = slots.read(flash)
    slot = "b" if st.get("active") == "a" else "a"
    root = flash + "/slots/" + slot
    if not _same(root + "/manifest.json", raw):
        rmtree(root)
        _mkdirs(root)
        with open(root + "/manifest.json", "wb") as f:
            f.write(raw)
    raw = None  # ~3 KB the download does not need (the caller keeps no reference either)
    files = m["files"]
    done = 0
    for path in sorted(files):
        info = files[path]
        _mkdirs((root + "/" + path).rsplit("/", 1)[0])
        h = hashlib.sha256()
        off = _hash_file(root + "/" + path, h)
        if off > info["size"]:
            os.remove(root + "/" + path)
            h, off = hashlib.sha256(), 0
        done += off
        with open(root + "/" + path, "ab" if off else "wb") as f:
            while off < info["size"]:
                chunk = await fetch(path, off, min(CHUNK, info["size"] - off))
                if not chunk:
                    raise OtaError("short download: " + path)
                f.write(chunk)
                h.update(chunk)
                off += len(chunk)
                done += len(chunk)
                if progress:
                    progress(done)
        if binascii.hexlify(h.digest()).decode() != info["sha256"] or off != info["size"]:
            os.remove(root + "/" + path)  # never resumed from: the next try fetches it whole
            raise OtaError("hash mismatch: " + path)
    with open(root + "/version", "w") as f:
        f.write(m["version"])
    cur = st.get("active")
    st["active"] = slot
    st["trial"] = {"slot": slot, "prev": cur, "boots": 0, "version": m["version"]}
    st.pop("rolled_back", None)
    slots.write(flash, st)
    return slot


async def install(flash, raw, sig_hex, key, fetch):
    """Download and verify bundle `raw` (its manifest) into the free slot; `await fetch(path, offset,
    n)` returns up to n bytes of a file. On success the slot is on trial from the next boot; returns
    its name. On any error nothing changes but the free slot's contents (OtaError says why)."""
    return await download(flash, check_manifest(raw, sig_hex, key), raw, fetch)


# ---- the update channel (docs/protocol.md "Over-the-air updates"): device-driven chunk requests ----
WAIT_MS = 5000  # for one chunk's answer; then the request is sent again
TRIES = 4  # unanswered requests in a row before the session pauses (the gateway offers again later)
IDLE_MS = 3000  # READY with nothing queued for this long (after a result screen) before the switch-over reboot
REPORT_EVERY = 16  # chunks between progress reports in the status


class Paused(Exception):
    pass


def split(payload):
    """(header dict, bytes after the header line) of an update message, or (None, None)."""
    i = payload.find(b"\n")
    try:
        head = json.loads(payload[:i] if i >= 0 else payload)
    except ValueError:
        return None, None
    if not isinstance(head, dict) or not isinstance(head.get("ver"), str):
        return None, None
    return head, (payload[i + 1:] if i >= 0 else b"")


def idle(app):
    """Nothing in progress: READY/OFFLINE on screen, no scan waiting for its verdict or in the outbox, no
    OK waiting for its turn, no relay pulse queued. A download pauses and the reboot waits otherwise."""
    ui = app.ui
    return (ui.state in ("READY", "OFFLINE") and ui.waiting is None and getattr(ui, "watch", None) is None
            and not len(app.outbox) and app.direct is None and not len(app.relays))


def offered(app, payload):
    """An offer from the gateway: the session that takes the update (its task started), or None."""
    from hx import VERSION

    head, _ = split(payload)
    if head is None or not head.get("offer") or head["ver"] == VERSION:
        return None
    st = slots.read(app.board.flash)
    if st.get("trial"):
        # The running update is not kept yet: the free slot is the one a rollback goes back to. The
        # gateway offers again with the next status, once this one is kept (or rolled back).
        return None
    if (st.get("rolled_back") or {}).get("ver") == head["ver"]:
        return None  # this device's own verdict on that version: a fixed one comes as a new version
    s = Session(app, head["ver"])
    asyncio.create_task(s.run())
    return s


class Session:
    """One update: asks for the manifest and then each file chunk by chunk (one request outstanding),
    only while the device is idle; reports progress in the status (app.ota); reboots into the new
    version once installed and idle for IDLE_MS. Never forces anything on a scan in progress."""

    def __init__(self, app, ver):
        self.app = app
        self.ver = ver
        self.topic = "hx/v1/dev/%s/otareq" % app.cfg["device"]
        self.want = None
        self.got = []  # [header, bytes] of the answer to the request outstanding
        self.ev = asyncio.Event()
        self.sig = None
        self.total = 0
        self.size = 0
        self.n = 0

    def on_message(self, payload):
        head, data = split(payload)
        if head is None or head["ver"] != self.ver or self.want != (head.get("f"), head.get("o")):
            return  # an offer while running, or an answer to an earlier request
        self.got = [head, data]
        self.ev.set()

    async def wait_idle(self, ms):
        since = None
        while True:
            now = time.ticks_ms()
            if not idle(self.app) or not self.app.mqtt.connected:
                since = None
            elif since is None:
                since = now
            if since is not None and time.ticks_diff(now, since) >= ms:
                return
            await asyncio.sleep_ms(200)

    async def fetch(self, path, off, n):
        for _ in range(TRIES):
            await self.wait_idle(0)
            self.want, self.got = (path, off), []
            self.ev.clear()
            req = json.dumps({"v": 1, "ver": self.ver, "f": path, "o": off, "n": n})
            await self.app.mqtt.publish(self.topic, req, 0)  # QoS 0: an unanswered one is asked again
            try:
                await asyncio.wait_for_ms(self.ev.wait(), WAIT_MS)
            except asyncio.TimeoutError:
                continue
            got = self.got
            if not got:
                continue
            head, data = got[0], got[1]
            if head.get("err"):
                raise OtaError("gateway: " + str(head["err"])[:40])
            if path == "":
                self.sig = head.get("sig")
                self.total = head.get("t") or 0
            return data
        raise Paused("no answer")

    def report(self, state, **kw):
        kw["state"] = state
        kw["ver"] = self.ver
        self.app.ota = kw
        self.app.board.event("ota", kw)
        self.app.status_now.set()

    def progress(self, done):
        self.n += 1
        if self.n % REPORT_EVERY == 0:
            self.report("downloading", done=done, total=self.size)

    async def run(self):
        app = self.app
        try:
            self.report("downloading", done=0, total=0)
            raw = b""
            while True:
                part = await self.fetch("", len(raw), CHUNK)
                raw += part
                if not part or len(raw) >= self.total:
                    break
            m = check_manifest(raw, self.sig or "", binascii.unhexlify(app.cfg["ota_key"]))
            if m["version"] != self.ver:
                raise OtaError("manifest is for " + m["version"][:32])
            self.size = sum(m["files"][p]["size"] for p in m["files"])
            one = [raw]
            raw = None
            await download(app.board.flash, m, one.pop(), self.fetch, self.progress)
            m = None
            self.report("installed", done=self.size, total=self.size)
            while True:
                await self.wait_idle(IDLE_MS)
                await asyncio.sleep_ms(300)  # the status saying "installed" goes out first
                if idle(app):  # not even a scan in these 300 ms
                    break
            app.board.event("ota", {"state": "reboot", "ver": self.ver})
            app.board.reboot()
        except Paused as e:
            self.report("paused", why=e.args[0])
        except (OtaError, OSError, MemoryError) as e:
            self.report("failed", why=repr(e)[:80] if not isinstance(e, OtaError) else e.args[0][:80])
        finally:
            app.ota_session = None
            from hx import lazy

            lazy.unload("hx.ota")  # ~10 KB of code, until the next offer loads it again
