# Unit tests of hx.outbox and hx.store: order, window, retransmit, back-off, bound, durability across
# "reboots", install ids.
import json
import os

from hx.outbox import BACKOFF_MAX_MS, Outbox, OutboxFull, entry_name, name_sid
from hx.store import DirStore, boot_ids, bump_boot, valid_iid

import t
from t import MemStore

IID = "Ab3xYz"  # an install id


def _add(ob, boot, seq, payload):
    return ob.add(IID, boot, seq, payload)


def test_names_sort_in_scan_order():
    names = [
        entry_name(IID, 2, 1),
        entry_name(IID, 1, 0x100),
        entry_name(IID, 1, 2),
        entry_name(IID, 0x10, 0),
    ]
    t.eq(
        sorted(names),
        [entry_name(IID, 1, 2), entry_name(IID, 1, 0x100), entry_name(IID, 2, 1), entry_name(IID, 0x10, 0)],
    )
    t.eq(name_sid(entry_name(IID, 0x3, 0x1A)), IID + "-3-1a")
    t.eq(name_sid(entry_name("", 0x3, 0x1A)), "3-1a", "an entry of the firmware before install ids")
    t.true(entry_name("", 7, 9) < entry_name(IID, 8, 1), "old entries still sort before the new boot's")


def S(boot, seq):
    return "%s-%x-%x" % (IID, boot, seq)


def test_order_window_retry_ack():
    ob = Outbox(MemStore(), 10, 2, 1000)
    for i in range(1, 5):
        t.eq(_add(ob, 1, i, b"p%d" % i), S(1, i))
    t.eq(ob.due(0), [(S(1, 1), b"p1"), (S(1, 2), b"p2")], "oldest first, window 2")
    t.eq(ob.due(10), [], "in flight")
    t.eq(ob.next_due_ms(10), 990)
    t.eq(ob.ack(S(1, 1)), True)
    t.eq(ob.due(20), [(S(1, 3), b"p3")], "window moves on")
    t.eq(ob.due(1000), [(S(1, 2), b"p2")], "retransmit after retry_ms")
    t.eq(ob.ack(S(1, 1)), False, "stale verdict")
    t.eq(ob.ack("9-9"), False, "unknown verdict")
    ob.unsent()
    t.eq([s for s, _ in ob.due(1001)], [S(1, 2), S(1, 3)], "reconnect resends all in flight")
    t.eq(len(ob), 3)


def test_full_is_an_error_not_a_drop():
    ob = Outbox(MemStore(), 2, 4, 1000)
    _add(ob, 1, 1, b"a")
    _add(ob, 1, 2, b"b")
    t.raises(OutboxFull, _add, ob, 1, 3, b"c")
    t.raises(OutboxFull, _add, ob, 1, 4, b"d")
    t.eq(ob.full_count, 2)
    t.eq(len(ob), 2)
    t.eq([p for _, p in ob.due(0)], [b"a", b"b"], "queued scans untouched")


def test_durable_across_reboot():
    d = t.tmpdir()
    ob = Outbox(DirStore(d + "/outbox"), 8, 4, 1000)
    _add(ob, 1, 1, b"one")
    _add(ob, 1, 2, b"two")
    _add(ob, 1, 3, b"three")
    ob.ack(S(1, 2))
    # A power cut mid-write leaves a .tmp file: it is not an entry.
    with open(d + "/outbox/00000001000000ff.tmp", "wb") as f:
        f.write(b"half")
    ob2 = Outbox(DirStore(d + "/outbox"), 8, 4, 1000)
    t.eq(len(ob2), 2)
    t.eq(ob2.due(0), [(S(1, 1), b"one"), (S(1, 3), b"three")])
    _add(ob2, 2, 1, b"next-boot")
    t.eq([s for s, _ in ob2.due(5000)], [S(1, 1), S(1, 3), S(2, 1)])
    t.eq(
        sorted(os.listdir(d + "/outbox")),
        ["0000000100000001" + IID, "0000000100000003" + IID, "0000000200000001" + IID],
    )


def test_hole1_entries_from_before_install_ids_keep_their_sid():
    """Hole 1: an upgrade keeps the outbox: entries queued by the firmware from before install ids
    are resent (and their verdicts matched) under their original sid; new ones carry the install id."""
    d = t.tmpdir()
    os.mkdir(d + "/outbox")
    for name, sid in (("0000000500000001", "5-1"), ("0000000500000002", "5-2")):
        with open(d + "/outbox/" + name, "wb") as f:
            f.write(json.dumps({"v": 1, "sid": sid, "code": "OLD", "qty": 1, "dir": "in", "at": 0}).encode())
    ob = Outbox(DirStore(d + "/outbox"), 8, 4, 1000)
    _add(ob, 6, 1, b"new")
    due = ob.due(0)
    t.eq([s for s, _ in due], ["5-1", "5-2", S(6, 1)], "old entries first, under their own sids")
    t.eq([json.loads(p)["sid"] for _, p in due[:2]], ["5-1", "5-2"], "the payload's sid is the one matched")
    t.eq(ob.ack("5-1"), True)
    t.eq(len(Outbox(DirStore(d + "/outbox"), 8, 4, 1000)), 2, "the acknowledged old entry left the flash")


def test_vanished_entry_does_not_wedge():
    st = MemStore()
    ob = Outbox(st, 8, 4, 1000)
    _add(ob, 1, 1, b"a")
    _add(ob, 1, 2, b"b")
    del st.files[entry_name(IID, 1, 1)]

    def boom(name):
        if name not in st.files:
            raise OSError(2)
        return st.files[name]

    st.read = boom
    t.eq(ob.due(0), [(S(1, 2), b"b")])
    t.eq(len(ob), 1)


def test_boot_counter():
    d = t.tmpdir()
    t.eq(bump_boot(d), 1)
    t.eq(bump_boot(d), 2)
    t.eq(bump_boot(d), 3)
    t.eq(t.read(d + "/boot"), "3")


def test_hole1_install_id_kept_and_renewed_by_an_erase():
    """Hole 1: a random install id is made at the first boot, kept on flash across boots, and a flash
    erase (missing files) makes a new one, so scan ids of the new install never repeat the old's."""
    d = t.tmpdir()
    iid, boot = boot_ids(d, os.urandom)
    t.true(valid_iid(iid), "6 letters/digits: %r" % iid)
    t.eq(boot, 1)
    t.eq(boot_ids(d, os.urandom), (iid, 2), "kept across a reboot")
    t.eq(t.read(d + "/install"), iid)
    os.remove(d + "/install")
    os.remove(d + "/boot")  # a flash erase
    iid2, boot2 = boot_ids(d, os.urandom)
    t.eq(boot2, 1, "the boot counter starts again")
    t.true(iid2 != iid, "a new install id")
    os.remove(d + "/boot")  # a lost boot counter alone also means a new install id
    t.true(boot_ids(d, os.urandom)[0] != iid2, "never (same id, boot 1) twice")
    # An upgrade from firmware without install ids keeps counting boots (old entries sort first).
    d2 = t.tmpdir()
    with open(d2 + "/boot", "w") as f:
        f.write("41")
    iid3, boot3 = boot_ids(d2, os.urandom)
    t.eq(boot3, 42)
    t.true(valid_iid(iid3), "made on the upgrade boot")


def test_install_id_is_unbiased_letters_and_digits():
    # The random source is taken as given: every byte >= 248 is skipped (it would bias the modulo).
    seq = iter([255, 248, 0, 61, 62, 1, 130, 200] + [5] * 16)
    from hx.store import new_iid

    t.eq(new_iid(lambda n: bytes(next(seq) for _ in range(n))), "0z016E")


def test_hole20_transient_keeps_the_scan_with_backoff():
    """Hole 20: a transient answer keeps the scan in the outbox; it is resent after an interval that
    doubles with each round of transient answers (capped), and a final verdict or a reconnect resets it."""
    ob = Outbox(MemStore(), 10, 4, 1000)
    sid = _add(ob, 1, 1, b"a")
    t.eq([s for s, _ in ob.due(0)], [sid])
    t.eq(ob.retry(sid, 100), True, "transient answer for a queued scan")
    t.eq(len(ob), 1, "the scan stays")
    t.eq(ob.next_due_ms(100), 2000, "interval doubled")
    t.eq(ob.due(2099), [])
    t.eq([s for s, _ in ob.due(2100)], [sid], "resent after the back-off")
    now = 2100
    ob.retry(sid, now)
    t.eq(ob.delay, 4000, "one more round: doubled again")
    for _ in range(10):
        now += ob.delay
        ob.retry(sid, now)
    t.eq(ob.delay, BACKOFF_MAX_MS, "bounded")
    t.eq(ob.next_due_ms(now), BACKOFF_MAX_MS)
    ob.unsent()
    t.eq(ob.delay, 1000, "a reconnect resets the back-off")
    ob.retry(sid, now)
    sid2 = _add(ob, 1, 2, b"b")
    t.eq(ob.ack(sid2), True, "a final verdict: the scan leaves")
    t.eq(ob.delay, 1000, "and the back-off is reset")
    ob.retry(sid, now + 1)
    t.eq(ob.delay, 2000, "the first transient answer after a reset doubles it at once")
    t.eq(ob.retry("9-9", now), False, "unknown sid")


def test_a_window_refused_together_doubles_the_interval_once():
    """A backlog's window answered RATE_LIMITED scan by scan is one round: the interval doubles once
    (not to the cap at once, which stalled the upload a minute per round)."""
    ob = Outbox(MemStore(), 10, 4, 1000)
    sids = [_add(ob, 1, n, b"x") for n in range(1, 5)]
    t.eq(len(ob.due(0)), 4)
    for n, sid in enumerate(sids):
        ob.retry(sid, 10 + n)
    t.eq(ob.delay, 2000, "doubled once for the round")
    t.eq(len(ob.due(2013)), 4, "the whole window is resent together")
    for sid in sids:
        ob.retry(sid, 2020)
    t.eq(ob.delay, 4000, "the next round doubles it again")


def test_hole13_find_and_rush_a_queued_scan():
    """Hole 13: the outbox finds the waiting scan of a code (also entries loaded from flash) and a
    rush publishes it at once, even beyond the in-flight window and while in flight."""
    d = t.tmpdir()
    ob = Outbox(DirStore(d + "/outbox"), 10, 1, 1000)
    for i, code in enumerate(("A", "B", "C")):
        payload = json.dumps({"v": 1, "sid": S(1, i + 1), "code": code, "qty": 1, "dir": "in", "at": 0})
        _add(ob, 1, i + 1, payload.encode())
    ob2 = Outbox(DirStore(d + "/outbox"), 10, 1, 1000)  # after a reboot: codes not in RAM yet
    for o in (ob, ob2):
        t.eq(o.find("C", lambda obj: True), S(1, 3))
        t.eq(o.find("C", lambda obj: obj["qty"] == 2), None, "a different request is not reused")
        t.eq(o.find("Z", lambda obj: True), None)
        t.eq([s for s, _ in o.due(0)], [S(1, 1)], "window 1")
        t.eq(o.rush(S(1, 3)), True)
        t.eq(o.next_due_ms(1), 0)
        t.eq([s for s, _ in o.due(1)], [S(1, 3)], "rushed beyond the window")
        t.eq(o.due(2), [])
        t.eq(o.rush(S(1, 1)), True)
        t.eq([s for s, _ in o.due(3)], [S(1, 1)], "rushed while in flight")
    t.eq(ob.rush("nope"), False)


def test_stray_files_in_the_outbox_folder_are_skipped():
    d = t.tmpdir()
    ob = Outbox(DirStore(d + "/outbox"), 8, 4, 1000)
    _add(ob, 1, 1, b"a")
    with open(d + "/outbox/notes.txt", "w") as f:
        f.write("hello")
    with open(d + "/outbox/0000000100000002" + "x" * 20, "w") as f:
        f.write("too long a name")
    os.mkdir(d + "/outbox/0000000100000003" + IID)
    _add(ob, 1, 4, b"b")
    ob2 = Outbox(DirStore(d + "/outbox"), 8, 4, 1000)
    t.eq(ob2.sids, [S(1, 1), S(1, 4)], "entries only, in order")
    t.eq(ob2.stray, 2, "the two stray files are counted (the folder is no entry)")


def test_index_is_compact_and_sorted_from_any_listing_order():
    import gc

    st = MemStore()
    for seq in range(1, 401):
        st.write(entry_name(IID, 3, seq), b"{}")

    class Shuffled:
        def names(self):
            names = st.names()
            return names[1::2] + names[0::2]

        def read(self, n):
            return st.read(n)

    gc.collect()
    before = gc.mem_alloc()
    ob = Outbox(Shuffled(), 1000, 4, 1000)
    gc.collect()
    per = (gc.mem_alloc() - before) / 400
    t.eq(ob.sids[:3], [S(3, 1), S(3, 2), S(3, 3)], "sorted")
    t.eq(ob.sids[-1], S(3, 400))
    t.true(per < 14, "%.1f bytes of RAM per queued scan (9 B of arrays; 17.6 B before)" % per)


def test_find_among_reads_only_those_entries():
    st = MemStore()
    reads = []
    real = st.read
    st.read = lambda n: reads.append(n) or real(n)
    for seq in range(1, 301):
        st.write(
            entry_name(IID, 1, seq), json.dumps({"v": 1, "sid": S(1, seq), "code": "Q%d" % seq}).encode()
        )
    ob = Outbox(st, 400, 4, 1000)  # queued before this boot: no code known in RAM
    _add(ob, 2, 1, json.dumps({"v": 1, "sid": S(2, 1), "code": "Q7"}).encode())
    t.eq(ob.find("Q7", lambda obj: True, [S(2, 1)]), S(2, 1), "the scan seen on screen this boot")
    t.eq(len(reads), 1, "one flash read, not 301")
    t.eq(ob.find("Q7", lambda obj: True, ["nope-1-1"]), None)
    t.eq(ob.find("Q7", lambda obj: True), S(1, 7), "without `among`: the oldest of all")


def test_send_times_only_for_the_window_and_the_rushed_scan():
    """RAM keeps send times only for the scans in flight: one that moves up into the window was never
    sent and goes at once; the rushed one keeps its time when it moves in (no double publish)."""
    ob = Outbox(MemStore(), 10, 2, 1000)
    for seq in range(1, 5):
        _add(ob, 1, seq, b"p%d" % seq)
    t.eq(len(ob.sent), 2, "two send times for a window of 2, whatever the queue")
    t.eq([s for s, _ in ob.due(0)], [S(1, 1), S(1, 2)])
    t.eq(ob.due(1), [])
    t.eq(ob.ack(S(1, 1)), True)
    t.eq([s for s, _ in ob.due(2)], [S(1, 3)], "moved up into the window: never sent, due now")
    t.eq(ob.rush(S(1, 4)), True)
    t.eq([s for s, _ in ob.due(3)], [S(1, 4)], "rushed beyond the window")
    t.eq(ob.ack(S(1, 2)), True)
    t.eq(ob.due(4), [], "the rushed scan moved into the window with its send time")
    t.eq(ob.next_due_ms(4), 998)
    t.eq([s for s, _ in ob.due(1003)], [S(1, 3), S(1, 4)], "both resent after the interval")
    _add(ob, 0, 9, b"older")  # sorts first (an older boot): pushes both in-flight scans along
    t.eq([s for s, _ in ob.due(1004)], [S(0, 9)], "the newcomer is due; S(1, 3) left the window")
    ob.unsent()
    t.eq([s for s, _ in ob.due(1005)], [S(0, 9), S(1, 3), S(1, 4)], "a reconnect resends all in flight")
