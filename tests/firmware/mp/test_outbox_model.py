# Model-based test of hx.outbox on the VM: random sequences of add / restore (an insert anywhere) / due /
# ack / retry / rush / reconnect / reboot / a full outbox, checked step by step against a small model.
#
# The model is the outbox's contract written plainly, one record per scan: scans in (boot, seq, iid)
# order, each with its last send time; at most `window` oldest in flight plus the rushed one; a send time
# means something only for those (one outside them is forgotten: it is sent again when it comes back,
# a repeat of the same sid, which the gateway answers with its stored verdict); nothing is ever dropped
# but by a final verdict; a reboot keeps every scan and forgets the send times.
import random

from hx.outbox import Outbox, OutboxFull, entry_name

import t
from t import MemStore

IIDS = ("", "Ab3xYz", "Zz9")  # "" = an entry from the firmware before install ids


def _sid(iid, boot, seq):
    return "%s-%x-%x" % (iid, boot, seq) if iid else "%x-%x" % (boot, seq)


class Model:
    def __init__(self, limit, window, retry_ms):
        self.limit, self.window, self.retry_ms = limit, window, retry_ms
        self.rows = []  # [key, sid, payload, sent or None], in scan order
        self.rushed = None
        self.delay = retry_ms
        self.grown = None  # when delay last grew (once per round of resends)

    def _norm(self):
        for i, r in enumerate(self.rows):
            if i >= self.window and r[1] != self.rushed:
                r[3] = None

    def find(self, sid):
        for i, r in enumerate(self.rows):
            if r[1] == sid:
                return i
        return -1

    def insert(self, iid, boot, seq, payload):
        key = (boot, seq, iid)
        self.rows.append([key, _sid(iid, boot, seq), payload, None])
        self.rows.sort(key=lambda r: r[0])
        self._norm()

    def drop(self, i):
        if self.rows[i][1] == self.rushed:
            self.rushed = None
        del self.rows[i]
        self._norm()

    def candidates(self):
        c = list(range(min(self.window, len(self.rows))))
        r = self.find(self.rushed) if self.rushed is not None else -1
        return c + ([r] if r >= self.window else [])

    def due(self, now):
        out = []
        for i in self.candidates():
            r = self.rows[i]
            if r[3] is None or now - r[3] >= self.delay:
                r[3] = now
                out.append((r[1], r[2]))
        return out

    def next_due_ms(self, now):
        waits = [
            0 if self.rows[i][3] is None else max(0, self.delay - (now - self.rows[i][3]))
            for i in self.candidates()
        ]
        return min(waits) if waits else None


def run(seed, steps):
    rnd = random
    rnd.seed(seed)
    limit, window, retry_ms = 2 + rnd.getrandbits(3), 1 + rnd.getrandbits(2), 100 * (1 + rnd.getrandbits(3))
    store = MemStore()
    ob = Outbox(store, limit, window, retry_ms)
    m = Model(limit, window, retry_ms)
    now = 0
    answered = []  # (name, payload) of acked scans: a late OK's rescan puts one back (restore)
    taken = set()
    log = []

    def check(what):
        t.eq(ob.sids, [r[1] for r in m.rows], "order after %s (seed %d: %s)" % (what, seed, log[-12:]))
        t.eq(
            sorted(store.files),
            sorted(entry_name(r[0][2], r[0][0], r[0][1]) for r in m.rows),
            "flash after " + what,
        )

    for _ in range(steps):
        now += (0, 1, 50, retry_ms - 1, retry_ms, 5 * retry_ms)[rnd.getrandbits(3) % 6]
        op = rnd.getrandbits(4)
        sids = [r[1] for r in m.rows]
        pick = sids[rnd.getrandbits(5) % len(sids)] if sids else "Ab3xYz-9-9"
        if op < 4:  # a new scan; now and then one that sorts before queued ones
            iid = IIDS[rnd.getrandbits(2) % 3]
            boot, seq = 1 + rnd.getrandbits(2), 1 + rnd.getrandbits(4)
            if (boot, seq, iid) in taken:
                continue
            payload = b"%d" % len(taken)
            log.append(("add", _sid(iid, boot, seq)))
            if len(m.rows) >= limit:
                t.raises(OutboxFull, ob.add, iid, boot, seq, payload)
            else:
                taken.add((boot, seq, iid))
                t.eq(ob.add(iid, boot, seq, payload), _sid(iid, boot, seq))
                m.insert(iid, boot, seq, payload)
        elif op < 7:
            log.append(("due", now))
            t.eq(ob.due(now), m.due(now), "due at %d (seed %d: %s)" % (now, seed, log[-12:]))
        elif op < 9:
            log.append(("ack", pick))
            i = m.find(pick)
            if i >= 0:
                e = ob.entry(pick)
                t.eq(e[1], m.rows[i][2], "payload")
                answered.append(e)
                m.delay = retry_ms
                m.grown = None
                m.drop(i)
            t.eq(ob.ack(pick), i >= 0, "ack " + pick)
        elif op == 9:
            log.append(("retry", pick, now))
            i = m.find(pick)
            if i >= 0:
                if i < window or pick == m.rushed:
                    m.rows[i][3] = now
                if m.grown is None or now - m.grown >= m.delay:
                    m.delay = min(m.delay * 2, max(60000, retry_ms))
                    m.grown = now
            t.eq(ob.retry(pick, now), i >= 0, "retry")
        elif op == 10:
            log.append(("rush", pick))
            i = m.find(pick)
            if i >= 0:
                m.rushed = pick
                m.rows[i][3] = None
                m._norm()
            t.eq(ob.rush(pick), i >= 0, "rush")
        elif op == 11:
            log.append(("reconnect",))
            ob.unsent()
            m.delay = retry_ms
            m.grown = None
            for r in m.rows:
                r[3] = None
        elif op == 12:
            log.append(("reboot",))
            ob = Outbox(store, limit, window, retry_ms)
            m.rushed = None
            m.delay = retry_ms
            m.grown = None
            for r in m.rows:
                r[3] = None
        elif op == 13 and answered:
            name, payload = answered.pop(rnd.getrandbits(4) % len(answered))
            log.append(("restore", name))
            boot, seq, iid = int(name[:8], 16), int(name[8:16], 16), name[16:]
            if m.find(_sid(iid, boot, seq)) >= 0:
                continue
            if len(m.rows) >= limit:
                t.raises(OutboxFull, ob.restore, name, payload)
            else:
                t.eq(ob.restore(name, payload), _sid(iid, boot, seq))
                m.insert(iid, boot, seq, payload)
        else:
            log.append(("next", now))
            t.eq(
                ob.next_due_ms(now),
                m.next_due_ms(now),
                "next_due_ms at %d (seed %d: %s)" % (now, seed, log[-12:]),
            )
        check(log[-1][0] if log else "-")


def test_outbox_follows_the_model():
    for seed in range(60):
        run(seed, 250)
