# Unit tests of hx.outbox and hx.store: order, window, retransmit, bound, durability across "reboots".
import os

import t
from hx.outbox import Outbox, OutboxFull, entry_name, name_sid
from hx.store import DirStore, bump_boot
from t import MemStore


def test_names_sort_in_scan_order():
    names = [entry_name(2, 1), entry_name(1, 0x100), entry_name(1, 2), entry_name(0x10, 0)]
    t.eq(sorted(names), [entry_name(1, 2), entry_name(1, 0x100), entry_name(2, 1), entry_name(0x10, 0)])
    t.eq(name_sid(entry_name(0x3, 0x1A)), "3-1a")


def test_order_window_retry_ack():
    ob = Outbox(MemStore(), 10, 2, 1000)
    for i in range(1, 5):
        t.eq(ob.add(1, i, b"p%d" % i), "1-%x" % i)
    t.eq(ob.due(0), [("1-1", b"p1"), ("1-2", b"p2")], "oldest first, window 2")
    t.eq(ob.due(10), [], "in flight")
    t.eq(ob.next_due_ms(10), 990)
    t.eq(ob.ack("1-1"), True)
    t.eq(ob.due(20), [("1-3", b"p3")], "window moves on")
    t.eq(ob.due(1000), [("1-2", b"p2")], "retransmit after retry_ms")
    t.eq(ob.ack("1-1"), False, "stale verdict")
    t.eq(ob.ack("9-9"), False, "unknown verdict")
    ob.unsent()
    t.eq([s for s, _ in ob.due(1001)], ["1-2", "1-3"], "reconnect resends all in flight")
    t.eq(len(ob), 3)


def test_full_is_an_error_not_a_drop():
    ob = Outbox(MemStore(), 2, 4, 1000)
    ob.add(1, 1, b"a")
    ob.add(1, 2, b"b")
    t.raises(OutboxFull, ob.add, 1, 3, b"c")
    t.raises(OutboxFull, ob.add, 1, 4, b"d")
    t.eq(ob.full_count, 2)
    t.eq(len(ob), 2)
    t.eq([p for _, p in ob.due(0)], [b"a", b"b"], "queued scans untouched")


def test_durable_across_reboot():
    d = t.tmpdir()
    ob = Outbox(DirStore(d + "/outbox"), 8, 4, 1000)
    ob.add(1, 1, b"one")
    ob.add(1, 2, b"two")
    ob.add(1, 3, b"three")
    ob.ack("1-2")
    # A power cut mid-write leaves a .tmp file: it is not an entry.
    with open(d + "/outbox/00000001000000ff.tmp", "wb") as f:
        f.write(b"half")
    ob2 = Outbox(DirStore(d + "/outbox"), 8, 4, 1000)
    t.eq(len(ob2), 2)
    t.eq(ob2.due(0), [("1-1", b"one"), ("1-3", b"three")])
    ob2.add(2, 1, b"next-boot")
    t.eq([s for s, _ in ob2.due(5000)], ["1-1", "1-3", "2-1"])
    t.eq(sorted(os.listdir(d + "/outbox")), ["0000000100000001", "0000000100000003", "0000000200000001"])


def test_vanished_entry_does_not_wedge():
    st = MemStore()
    ob = Outbox(st, 8, 4, 1000)
    ob.add(1, 1, b"a")
    ob.add(1, 2, b"b")
    del st.files[entry_name(1, 1)]

    def boom(name):
        if name not in st.files:
            raise OSError(2)
        return st.files[name]

    st.read = boom
    t.eq(ob.due(0), [("1-2", b"b")])
    t.eq(len(ob), 1)


def test_boot_counter():
    d = t.tmpdir()
    t.eq(bump_boot(d), 1)
    t.eq(bump_boot(d), 2)
    t.eq(bump_boot(d), 3)
    t.eq(t.read(d + "/boot"), "3")
