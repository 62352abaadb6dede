# The durable outbox policy: bounded, in scan order, each scan resent until a final verdict arrives.
import json
import time
from micropython import const

BACKOFF_MAX_MS = const(60000)  # transient answers double the resend interval up to this
_UNREAD = const(-1)  # a code hash not known yet (hash() never returns -1)


def entry_name(iid, boot, seq):
    # Fixed-width hex first, so that sorting names sorts scans by (boot, seq), i.e. in the order they
    # were taken; the install id follows (the file name alone gives back the scan id).
    return "%08x%08x%s" % (boot, seq, iid)


def name_sid(name):
    boot = int(name[:8], 16)
    seq = int(name[8:16], 16)
    if len(name) > 16:
        return "%s-%x-%x" % (name[16:], boot, seq)
    # An entry queued by firmware from before install ids: its payload on flash carries this sid, and
    # it must be resent (and its verdict matched) under exactly that id.
    return "%x-%x" % (boot, seq)


class OutboxFull(Exception):
    pass


class Outbox:
    """Scans waiting for a final verdict. Payloads live in the store (flash); RAM holds names, send
    times and a small hash of each scan's code.

    - add(): durable before it returns; raises OutboxFull when `limit` scans wait (never drops one).
    - due(now): the oldest scans first, at most `window` in flight (plus the one rushed for a rescan);
      a scan sent more than `delay` ms ago without a verdict is due again (the gateway answers
      repeats with the stored verdict).
    - ack(sid): a final verdict arrived: the scan leaves. True only for a scan we were waiting for.
    - retry(sid, now): a transient answer (nothing was decided): the scan stays and the resend interval
      doubles, from `retry_ms` up to BACKOFF_MAX_MS; a final verdict or a reconnect resets it.
    - find(code, match) / rush(sid): a rescan of a code still waiting rejoins its queued scan.
    """

    def __init__(self, store, limit, window, retry_ms):
        self.store = store
        self.limit = limit
        self.window = window
        self.retry_ms = retry_ms
        self.delay = retry_ms  # the current resend interval (grows with transient answers)
        self.names = store.names()
        self.sids = [name_sid(n) for n in self.names]
        self.sent = [None] * len(self.names)
        self.keys = [_UNREAD] * len(self.names)  # hash of each entry's code, _UNREAD until read from flash
        self.rushed = None  # sid of a rescanned entry: published now even outside the window
        self.full_count = 0

    def __len__(self):
        return len(self.names)

    def add(self, iid, boot, seq, payload, code=None):
        if len(self.names) >= self.limit:
            self.full_count += 1
            raise OutboxFull()
        name = entry_name(iid, boot, seq)
        self.store.write(name, payload)
        self.names.append(name)
        self.sids.append(name_sid(name))
        self.sent.append(None)
        self.keys.append(hash(code or ""))
        return self.sids[-1]

    def _drop(self, i):
        self.store.remove(self.names[i])
        if self.sids[i] == self.rushed:
            self.rushed = None
        del self.names[i]
        del self.sids[i]
        del self.sent[i]
        del self.keys[i]

    def _is_due(self, i, now):
        t = self.sent[i]
        return t is None or time.ticks_diff(now, t) >= self.delay

    def _wait(self, i, now):
        t = self.sent[i]
        return 0 if t is None else max(0, self.delay - time.ticks_diff(now, t))

    def _rushed_index(self):
        # The rushed entry when it lies beyond the window (inside it, it is sent anyway).
        if self.rushed is None:
            return -1
        try:
            i = self.sids.index(self.rushed)
        except ValueError:
            self.rushed = None
            return -1
        return i if i >= self.window else -1

    def due(self, now):
        """[(sid, payload)] to publish now, oldest first; marks them sent at `now`."""
        out = []
        n = min(self.window, len(self.names))
        r = self._rushed_index()
        for i in list(range(n)) + ([r] if r >= 0 else []):
            if self._is_due(i, now):
                try:
                    payload = self.store.read(self.names[i])
                except OSError:
                    # The entry file vanished (flash trouble): forget it rather than wedge the queue.
                    self._drop(i)
                    return out + self.due(now)
                self.sent[i] = now
                out.append((self.sids[i], payload))
        return out

    def next_due_ms(self, now):
        """ms until due() would return something (0 = now), or None when nothing waits."""
        best = None
        r = self._rushed_index()
        for i in list(range(min(self.window, len(self.names)))) + ([r] if r >= 0 else []):
            d = self._wait(i, now)
            if best is None or d < best:
                best = d
        return best

    def unsent(self):
        """After a reconnect everything in flight is resent at once, at the normal interval again."""
        self.delay = self.retry_ms
        for i in range(len(self.sent)):
            self.sent[i] = None

    def ack(self, sid):
        try:
            i = self.sids.index(sid)
        except ValueError:
            return False
        self._drop(i)
        self.delay = self.retry_ms  # the gateway decides again: back to the normal interval
        return True

    def retry(self, sid, now):
        """A transient answer for `sid`: keep it, resend after the (doubled) interval. False if unknown."""
        try:
            i = self.sids.index(sid)
        except ValueError:
            return False
        self.sent[i] = now
        self.delay = min(self.delay * 2, max(BACKOFF_MAX_MS, self.retry_ms))
        return True

    def find(self, code, match):
        """sid of the oldest waiting scan of `code` whose payload (a dict) `match` accepts, else None.

        Only entries whose code hash matches are read from flash (and those loaded at boot, once)."""
        h = hash(code)
        for i in range(len(self.names)):
            k = self.keys[i]
            if k != _UNREAD and k != h:
                continue
            try:
                obj = json.loads(self.store.read(self.names[i]))
            except (OSError, ValueError):
                continue
            c = obj.get("code") if isinstance(obj, dict) else None
            self.keys[i] = hash(c if isinstance(c, str) else "")
            if c == code and match(obj):
                return self.sids[i]
        return None

    def entry(self, sid):
        """(name, payload) of a waiting scan, or None."""
        try:
            i = self.sids.index(sid)
            return self.names[i], self.store.read(self.names[i])
        except (ValueError, OSError):
            return None

    def restore(self, name, payload, code):
        """Put an answered scan back (durable, in its place by name); its sid again. Raises OutboxFull."""
        if len(self.names) >= self.limit:
            self.full_count += 1
            raise OutboxFull()
        self.store.write(name, payload)
        i = 0
        while i < len(self.names) and self.names[i] < name:
            i += 1
        self.names.insert(i, name)
        self.sids.insert(i, name_sid(name))
        self.sent.insert(i, None)
        self.keys.insert(i, hash(code))
        return self.sids[i]

    def rush(self, sid):
        """Publish `sid` at the next due(), even beyond the window (the holder is rescanning it)."""
        try:
            i = self.sids.index(sid)
        except ValueError:
            return False
        self.sent[i] = None
        self.rushed = sid
        return True
