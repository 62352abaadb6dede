# The durable outbox policy: bounded, in scan order, each scan resent until a final verdict arrives.
import json
import time
from array import array
from micropython import const

BACKOFF_MAX_MS = const(60000)  # transient answers double the resend interval up to this
_NEVER = const(-1)  # not sent yet (ticks_ms() is never negative)


def parse_name(name):
    """(boot, seq, iid) of an entry file name, or None for a file that is not an entry (a stray file
    in the folder must never stop the device from booting)."""
    if len(name) < 16 or len(name) > 16 + 8:
        return None
    k = 0
    for b in name.encode():  # bytes, not characters (iterating a str interns them: protocol.py)
        if not (48 <= b <= 57 or 97 <= b <= 102 or (k >= 16 and (65 <= b <= 90 or 103 <= b <= 122))):
            return None
        k += 1
    return int(name[:8], 16), int(name[8:16], 16), name[16:]


def _cut(a, i, j):
    """Remove items i..j-1 of an array or bytearray in place."""
    a[i:j] = a[0:0]


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
    """Scans waiting for a final verdict. Payloads live in the store (flash); RAM holds a compact index
    in scan order: boot and seq (array "I") and which install id (a byte into `iids`, normally one):
    9 bytes per entry, so a full outbox costs KBs, not the heap (docs/firmware.md). Send times are
    kept only where they mean something: for the `window` oldest entries (`sent`, the ones in flight)
    and for the rushed one (`rushed_at`); an entry that moves up into the window was never sent.

    - add(): durable before it returns; raises OutboxFull when `limit` scans wait (never drops one).
    - due(now): the oldest scans first, at most `window` in flight (plus the one rushed for a rescan);
      a scan sent more than `delay` ms ago without a verdict is due again (the gateway answers
      repeats with the stored verdict).
    - ack(sid): a final verdict arrived: the scan leaves. True only for a scan we were waiting for.
    - retry(sid, now): a transient answer (nothing was decided): the scan stays and the resend interval
      doubles (once per round of resends), from `retry_ms` up to BACKOFF_MAX_MS; a final verdict or a
      reconnect resets it.
    - find(code, match, among) / rush(sid): a rescan of a code still waiting rejoins its queued scan
      (only the few scans in `among` are read from flash).
    Files in the folder that are not entries are skipped (counted in `stray`).
    """

    def __init__(self, store, limit, window, retry_ms):
        self.store = store
        self.limit = limit
        self.window = window
        self.retry_ms = retry_ms
        self.delay = retry_ms  # the current resend interval (grows with transient answers)
        self.grown = None  # when it last grew: the answers to one round of resends grow it once
        self.iids = []
        self.rushed = None  # sid of a rescanned entry: published now even outside the window
        self.rushed_at = _NEVER  # when it was, if it lies beyond the window
        self.sent = array("i", [_NEVER] * window)  # last send of the entries in flight (ticks)
        self.full_count = 0
        self.stray = 0
        self._load()

    def _load(self):
        """Index the entries on flash in two passes over the folder (an iterator: no list of names):
        count, then fill arrays made at their final size (growing five arrays entry by entry would
        leave the heap full of the holes of their earlier sizes), then sort them in place."""
        n = 0
        for name in self.store.names():
            if parse_name(name) is None:
                self.stray += 1
            else:
                n += 1
        self.boots = array("I", range(n))
        self.seqs = array("I", range(n))
        self.who = bytearray(n)
        k = 0
        for name in self.store.names():
            e = parse_name(name)
            if e is None or k >= n or (len(self.iids) >= 255 and e[2] not in self.iids):
                continue
            if e[2] not in self.iids:
                self.iids.append(e[2])
            self.boots[k] = e[0]
            self.seqs[k] = e[1]
            self.who[k] = self.iids.index(e[2])
            k += 1
        for a in (self.boots, self.seqs, self.who):
            _cut(a, k, n)  # entries that vanished between the passes
        self._sort()

    def _sort(self):
        """Shell sort of the index by (boot, seq, install id), in place: a sorted listing (LittleFS)
        costs one pass, a hashed one (a host filesystem) ~n^1.3 swaps."""
        n = len(self.boots)
        for gap in (701, 301, 132, 57, 23, 10, 4, 1):
            for i in range(gap, n):
                j = i
                while j >= gap and not self._before(j - gap, self.boots[j], self.seqs[j], self.iids[self.who[j]]):
                    for a in (self.boots, self.seqs, self.who):
                        a[j], a[j - gap] = a[j - gap], a[j]
                    j -= gap

    def __len__(self):
        return len(self.boots)

    @property
    def sids(self):
        return [self.sid(i) for i in range(len(self))]

    def sid(self, i):
        iid = self.iids[self.who[i]]
        if iid:
            return "%s-%x-%x" % (iid, self.boots[i], self.seqs[i])
        return "%x-%x" % (self.boots[i], self.seqs[i])

    def name(self, i):
        return entry_name(self.iids[self.who[i]], self.boots[i], self.seqs[i])

    def _before(self, i, boot, seq, iid):
        b = self.boots[i]
        if b != boot:
            return b < boot
        q = self.seqs[i]
        return q < seq if q != seq else self.iids[self.who[i]] < iid

    def _insert(self, boot, seq, iid):
        if iid not in self.iids:
            self.iids.append(iid)
        w = self.iids.index(iid)
        n = len(self.boots)
        i = n
        while i > 0 and not self._before(i - 1, boot, seq, iid):
            i -= 1  # files mostly come in order (LittleFS lists sorted): this rarely moves
        if i == n:
            self.boots.append(boot)
            self.seqs.append(seq)
            self.who.append(w)
        else:
            self.boots[i:i] = array("I", (boot,))
            self.seqs[i:i] = array("I", (seq,))
            self.who[i:i] = bytes((w,))
        if i < self.window:  # it pushes the last one in flight out of the window (resent when back)
            self.sent[i + 1 :] = self.sent[i:-1]
            self.sent[i] = _NEVER
        return i

    def index(self, sid):
        """Index of the entry with scan id `sid`, or -1."""
        parts = sid.split("-")
        try:
            if len(parts) == 3:
                iid, boot, seq = parts[0], int(parts[1], 16), int(parts[2], 16)
            else:
                iid, boot, seq = "", int(parts[0], 16), int(parts[1], 16)
        except (ValueError, IndexError):
            return -1
        if iid not in self.iids:
            return -1
        w = self.iids.index(iid)
        for i in range(len(self.boots)):
            if self.seqs[i] == seq and self.boots[i] == boot and self.who[i] == w:
                return i
        return -1

    def add(self, iid, boot, seq, payload):
        if len(self) >= self.limit:
            self.full_count += 1
            raise OutboxFull()
        self.store.write(entry_name(iid, boot, seq), payload)
        return self.sid(self._insert(boot, seq, iid))

    def _drop(self, i):
        self.store.remove(self.name(i))
        if self.rushed is not None and self.sid(i) == self.rushed:
            self.rushed = None
        for a in (self.boots, self.seqs, self.who):
            _cut(a, i, i + 1)
        w = self.window
        if i < w:  # the next entry moves up into the window: unsent, unless it is the rushed one
            self.sent[i : w - 1] = self.sent[i + 1 :]
            self.sent[w - 1] = _NEVER
            if self.rushed is not None and len(self) >= w and self.sid(w - 1) == self.rushed:
                self.sent[w - 1] = self.rushed_at

    def _sent(self, i):
        return self.sent[i] if i < self.window else self.rushed_at

    def _mark(self, i, now):
        if i < self.window:
            self.sent[i] = now
        if self.rushed is not None and self.sid(i) == self.rushed:
            self.rushed_at = now  # also inside the window: an insert may push it out again

    def _is_due(self, i, now):
        t = self._sent(i)
        return t == _NEVER or time.ticks_diff(now, t) >= self.delay

    def _wait(self, i, now):
        t = self._sent(i)
        return 0 if t == _NEVER else max(0, self.delay - time.ticks_diff(now, t))

    def _rushed_index(self):
        # The rushed entry when it lies beyond the window (inside it, it is sent anyway).
        if self.rushed is None:
            return -1
        i = self.index(self.rushed)
        if i < 0:
            self.rushed = None
        return i if i >= self.window else -1

    def due(self, now):
        """[(sid, payload)] to publish now, oldest first; marks them sent at `now`."""
        out = []
        n = min(self.window, len(self))
        r = self._rushed_index()
        for i in list(range(n)) + ([r] if r >= 0 else []):
            if self._is_due(i, now):
                try:
                    payload = self.store.read(self.name(i))
                except OSError:
                    # The entry file vanished (flash trouble): forget it rather than wedge the queue.
                    self._drop(i)
                    return out + self.due(now)
                self._mark(i, now)
                out.append((self.sid(i), payload))
        return out

    def next_due_ms(self, now):
        """ms until due() would return something (0 = now), or None when nothing waits."""
        best = None
        r = self._rushed_index()
        for i in list(range(min(self.window, len(self)))) + ([r] if r >= 0 else []):
            d = self._wait(i, now)
            if best is None or d < best:
                best = d
        return best

    def unsent(self):
        """After a reconnect everything in flight is resent at once, at the normal interval again."""
        self.delay = self.retry_ms
        self.grown = None
        for i in range(self.window):
            self.sent[i] = _NEVER
        self.rushed_at = _NEVER

    def ack(self, sid):
        i = self.index(sid)
        if i < 0:
            return False
        self._drop(i)
        self.delay = self.retry_ms  # the gateway decides again: back to the normal interval
        self.grown = None
        return True

    def retry(self, sid, now):
        """A transient answer for `sid`: keep it, resend after the (doubled) interval. False if unknown.

        The interval doubles once per round, not once per answer: a window of scans refused together
        (RATE_LIMITED while a backlog drains) would otherwise jump straight to the cap and stall the
        upload for a minute per round."""
        i = self.index(sid)
        if i < 0:
            return False
        self._mark(i, now)
        if self.grown is None or time.ticks_diff(now, self.grown) >= self.delay:
            self.delay = min(self.delay * 2, max(BACKOFF_MAX_MS, self.retry_ms))
            self.grown = now
        return True

    def find(self, code, match, among=None):
        """sid of the oldest waiting scan of `code` whose payload (a dict) `match` accepts, else None;
        with `among` (sids), only those scans are looked at (each read from flash: the app passes the
        few the holder saw on screen, so a rescan never reads hundreds of entries queued offline; RAM
        keeps no code per entry)."""
        if among is None:
            where = range(len(self))
        else:
            where = sorted(i for i in (self.index(s) for s in among) if i >= 0)
        for i in where:
            try:
                obj = json.loads(self.store.read(self.name(i)))
            except (OSError, ValueError):
                continue
            c = obj.get("code") if isinstance(obj, dict) else None
            if c == code and match(obj):
                return self.sid(i)
        return None

    def entry(self, sid):
        """(name, payload) of a waiting scan, or None."""
        i = self.index(sid)
        if i < 0:
            return None
        try:
            return self.name(i), self.store.read(self.name(i))
        except OSError:
            return None

    def restore(self, name, payload):
        """Put an answered scan back (durable, in its place by name); its sid again. Raises OutboxFull."""
        if len(self) >= self.limit:
            self.full_count += 1
            raise OutboxFull()
        e = parse_name(name)
        if e is None:
            raise OSError("bad entry name")
        self.store.write(name, payload)
        return self.sid(self._insert(e[0], e[1], e[2]))

    def rush(self, sid):
        """Publish `sid` at the next due(), even beyond the window (the holder is rescanning it)."""
        i = self.index(sid)
        if i < 0:
            return False
        if i < self.window:
            self.sent[i] = _NEVER
        self.rushed = sid
        self.rushed_at = _NEVER
        return True
