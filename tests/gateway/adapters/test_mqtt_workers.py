# The workers' presence as one worker hears it: who still serves, and whose watch to cancel when one goes.
from __future__ import annotations

from gateway.adapters.mqtt.contract import GATEWAY_OFFLINE, WORKER_STATUS_PREFIX, gateway_online
from gateway.adapters.mqtt.workers import Peers, shared

W1, W2 = WORKER_STATUS_PREFIX + "w1", WORKER_STATUS_PREFIX + "w2"


def test_a_peer_going_offline_names_the_watch_it_announced() -> None:
    p = Peers("w1")
    assert p.seen(W2, gateway_online(1.0, watch="gw-w2-watch").encode()) is None
    assert p.others_online()
    assert p.seen(W2, GATEWAY_OFFLINE.encode()) == "gw-w2-watch"
    assert not p.others_online()
    assert p.seen(W2, GATEWAY_OFFLINE.encode()) is None  # cancelled once; a repeat names nobody


def test_our_own_presence_and_unknown_or_unreadable_ones_name_no_watch() -> None:
    p = Peers("w1")
    p.seen(W1, gateway_online(1.0, watch="gw-w1-watch").encode())
    assert p.seen(W1, GATEWAY_OFFLINE.encode()) is None  # never cancel our own will
    assert p.seen(W2, GATEWAY_OFFLINE.encode()) is None  # never heard online: its watch is unknown
    p.seen(W2, gateway_online(1.0, watch="gw-w2-watch").encode())
    assert p.seen(W2, b"") == "gw-w2-watch"  # a cleared presence is nobody serving too
    assert p.seen(W2, b"{not json") is None


def test_the_devices_presence_carries_no_watch() -> None:
    assert "watch" not in gateway_online(5.0)


def test_scans_are_shared_and_commands_stay_per_worker() -> None:
    subs = shared([("hx/v1/dev/+/scan", 1), ("hx/v1/dev/+/cmd", 0)], "g")
    assert subs == [("$share/g/hx/v1/dev/+/scan", 1), ("hx/v1/dev/+/cmd", 0), (WORKER_STATUS_PREFIX + "+", 1)]
