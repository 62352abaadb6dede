# The shim that lets the firmware core run on CPython: MicroPython's tick arithmetic and durable writes.
from __future__ import annotations

import os
from pathlib import Path

import pytest

from reader import compat


def test_ticks_wrap_as_micropythons_do() -> None:
    top = (1 << 30) - 1
    assert compat.ticks_add(top, 1) == 0
    assert compat.ticks_diff(compat.ticks_add(top, 5), top) == 5
    assert compat.ticks_diff(top, compat.ticks_add(top, 5)) == -5
    assert 0 <= compat.ticks_ms() <= top


def test_the_cores_store_writes_durably(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    compat.install()
    import hx.store

    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real(fd))
    st = hx.store.DirStore(str(tmp_path / "outbox"))
    st.write("0000000100000001abcdef", b'{"sid": "x"}')
    assert st.read("0000000100000001abcdef") == b'{"sid": "x"}'
    assert len(synced) == 2, "the file, then its folder (the rename)"
    assert list(st.names()) == ["0000000100000001abcdef"]
    assert not [p for p in (tmp_path / "outbox").iterdir() if p.name.endswith(".tmp")]
    assert (tmp_path / "outbox" / "0000000100000001abcdef").stat().st_mode & 0o077 == 0
