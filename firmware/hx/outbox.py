# The durable outbox policy: bounded, in scan order, each scan resent until its verdict arrives.
import time

def entry_name(boot, seq):
    # Fixed-width hex so that sorting names sorts scans by (boot, seq), i.e. in the order they were taken.
    return "%08x%08x" % (boot, seq)


def name_sid(name):
    return "%x-%x" % (int(name[:8], 16), int(name[8:], 16))


class OutboxFull(Exception):
    pass


class Outbox:
    """Scans waiting for a verdict. Payloads live in the store (flash); RAM holds names and send times.

    - add(): durable before it returns; raises OutboxFull when `limit` scans wait (never drops one).
    - due(now): the oldest scans first, at most `window` in flight; a scan sent more than `retry_ms` ago
      without a verdict is due again (the gateway answers repeats with the stored verdict).
    - ack(sid): the verdict arrived; True only for a scan we were waiting for (stale ones are ignored).
    """

    def __init__(self, store, limit, window, retry_ms):
        self.store = store
        self.limit = limit
        self.window = window
        self.retry_ms = retry_ms
        self.names = store.names()
        self.sids = [name_sid(n) for n in self.names]
        self.sent = [None] * len(self.names)
        self.full_count = 0

    def __len__(self):
        return len(self.names)

    def add(self, boot, seq, payload):
        if len(self.names) >= self.limit:
            self.full_count += 1
            raise OutboxFull()
        name = entry_name(boot, seq)
        self.store.write(name, payload)
        self.names.append(name)
        self.sids.append(name_sid(name))
        self.sent.append(None)
        return self.sids[-1]

    def due(self, now):
        """[(sid, payload)] to publish now, oldest first; marks them sent at `now`."""
        out = []
        n = min(self.window, len(self.names))
        for i in range(n):
            t = self.sent[i]
            if t is None or time.ticks_diff(now, t) >= self.retry_ms:
                try:
                    payload = self.store.read(self.names[i])
                except OSError:
                    # The entry file vanished (flash trouble): forget it rather than wedge the queue.
                    self.ack(self.sids[i])
                    return out + self.due(now)
                self.sent[i] = now
                out.append((self.sids[i], payload))
        return out

    def next_due_ms(self, now):
        """ms until due() would return something (0 = now), or None when nothing waits."""
        best = None
        for i in range(min(self.window, len(self.names))):
            t = self.sent[i]
            d = 0 if t is None else max(0, self.retry_ms - time.ticks_diff(now, t))
            if best is None or d < best:
                best = d
        return best

    def unsent(self):
        """After a reconnect everything in flight is resent at once."""
        for i in range(len(self.sent)):
            self.sent[i] = None

    def ack(self, sid):
        try:
            i = self.sids.index(sid)
        except ValueError:
            return False
        self.store.remove(self.names[i])
        del self.names[i]
        del self.sids[i]
        del self.sent[i]
        return True
