# Keyboard-wedge key events -> code lines, with real evdev InputEvent objects (no /dev/uinput here).
from __future__ import annotations

import asyncio
import os
from pathlib import Path

from evdev import InputEvent, ecodes

from reader.hid import MAX_LINE, KeyLines, fifo_events, lines
from tests.reader.process import keystrokes


def ev(code: int, value: int, type_: int = ecodes.EV_KEY) -> InputEvent:
    return InputEvent(0, 0, type_, code, value)


def feed_all(keys: KeyLines, events: list[InputEvent]) -> list[bytes | None]:
    out: list[bytes | None] = []
    for e in events:
        r = keys.feed(e)
        if r != ():
            out.append(r)  # type: ignore[arg-type]
    return out


def tap(code: int) -> list[InputEvent]:
    return [ev(code, 1), ev(ecodes.SYN_REPORT, 0, ecodes.EV_SYN), ev(code, 0)]


def test_shifted_and_plain_characters_make_one_line_per_enter() -> None:
    events = [
        ev(ecodes.KEY_LEFTSHIFT, 1),
        *tap(ecodes.KEY_H),
        *tap(ecodes.KEY_X),
        ev(ecodes.KEY_LEFTSHIFT, 0),
    ]
    events += tap(ecodes.KEY_MINUS) + tap(ecodes.KEY_A) + tap(ecodes.KEY_7)
    events += [
        ev(ecodes.KEY_RIGHTSHIFT, 1),
        *tap(ecodes.KEY_1),
        *tap(ecodes.KEY_SLASH),
        ev(ecodes.KEY_RIGHTSHIFT, 0),
    ]
    events += tap(ecodes.KEY_ENTER) + tap(ecodes.KEY_KP4) + tap(ecodes.KEY_KPENTER)
    assert feed_all(KeyLines(), events) == [b"HX-a7!?", b"4"]


def test_tab_ends_a_line_and_autorepeat_and_empty_lines_are_ignored() -> None:
    events = [
        ev(ecodes.KEY_B, 1),
        ev(ecodes.KEY_B, 2),
        ev(ecodes.KEY_B, 0),
        *tap(ecodes.KEY_TAB),
        *tap(ecodes.KEY_ENTER),
    ]
    assert feed_all(KeyLines(), events) == [b"b"]


def test_an_unmapped_key_or_an_overlong_line_drops_that_line_only() -> None:
    keys = KeyLines()
    bad = tap(ecodes.KEY_A) + tap(ecodes.KEY_F5) + tap(ecodes.KEY_ENTER)
    long = tap(ecodes.KEY_Z) * (MAX_LINE + 1) + tap(ecodes.KEY_ENTER)
    assert feed_all(keys, bad + long + tap(ecodes.KEY_Q) + tap(ecodes.KEY_ENTER)) == [None, None, b"q"]


def test_the_fifo_source_gives_evdev_events_as_a_device_would(tmp_path: Path) -> None:
    fifo = tmp_path / "wedge.fifo"
    os.mkfifo(fifo)

    async def main() -> list[bytes | None]:
        it = lines(fifo_events(str(fifo))).__aiter__()
        first = asyncio.ensure_future(it.__anext__())
        await asyncio.sleep(0.1)  # the reader has the FIFO open (a writer needs one)
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.write(fd, keystrokes("Order-42") + keystrokes("x"))
        os.close(fd)
        got = [await asyncio.wait_for(first, 10), await asyncio.wait_for(it.__anext__(), 10)]
        await it.aclose()  # type: ignore[attr-defined]
        return got

    assert asyncio.run(main()) == [b"Order-42", b"x"]
