# sd_notify over $NOTIFY_SOCKET: the datagrams systemd reads, and the watchdog period it hands over.
from __future__ import annotations

import socket
from pathlib import Path

import pytest

from reader import systemd


def test_notify_sends_the_state_and_never_blocks_on_a_full_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "n.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(str(path))
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert systemd.notify("READY=1")
        assert s.recv(100) == b"READY=1"
        sent = [systemd.notify("WATCHDOG=1") for _ in range(2000)]  # nobody reads: the queue fills
        assert sent[0] and not sent[-1], "a full queue drops the ping instead of stalling the loop"


def test_without_systemd_nothing_is_sent_and_the_watchdog_is_ours_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert systemd.notify("READY=1") is False
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert systemd.watchdog_s() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", "1")  # meant for another process
    assert systemd.watchdog_s() is None
