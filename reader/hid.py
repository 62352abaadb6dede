# USB HID keyboard-wedge scanners through evdev: key events -> code lines (US layout, shift), device grabbed.
from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import AsyncIterator
from typing import Any

from evdev import InputEvent, ecodes

MAX_LINE = 600  # as the GM65 line reader (hx/gm65.py): a longer line is dropped, never truncated
_ROWS = (
    ("1234567890", "!@#$%^&*()", "KEY_1 KEY_2 KEY_3 KEY_4 KEY_5 KEY_6 KEY_7 KEY_8 KEY_9 KEY_0"),
    (
        "-=[]\\;'`,./ ",
        '_+{}|:"~<>? ',
        "KEY_MINUS KEY_EQUAL KEY_LEFTBRACE KEY_RIGHTBRACE KEY_BACKSLASH KEY_SEMICOLON KEY_APOSTROPHE "
        "KEY_GRAVE KEY_COMMA KEY_DOT KEY_SLASH KEY_SPACE",
    ),
)


def _keymap() -> dict[int, tuple[str, str]]:
    """Key code -> (plain, shifted) character on a US layout, the layout scanners default to."""
    keys: dict[int, tuple[str, str]] = {}
    for ch in "abcdefghijklmnopqrstuvwxyz":
        keys[ecodes.ecodes["KEY_" + ch.upper()]] = (ch, ch.upper())
    for plain, shifted, names in _ROWS:
        for p, s, name in zip(plain, shifted, names.split(), strict=True):
            keys[ecodes.ecodes[name]] = (p, s)
    for d in "0123456789":  # the keypad: some scanners send digits there (no shifted form)
        keys[ecodes.ecodes["KEY_KP" + d]] = (d, d)
    for name, ch in (
        ("KEY_KPMINUS", "-"),
        ("KEY_KPPLUS", "+"),
        ("KEY_KPDOT", "."),
        ("KEY_KPSLASH", "/"),
        ("KEY_KPASTERISK", "*"),
    ):
        keys[ecodes.ecodes[name]] = (ch, ch)
    return keys


KEYS = _keymap()
SHIFTS = frozenset((ecodes.KEY_LEFTSHIFT, ecodes.KEY_RIGHTSHIFT))
ENDS = frozenset((ecodes.KEY_ENTER, ecodes.KEY_KPENTER, ecodes.KEY_TAB))  # the scanner's suffix key
_UP, _DOWN = 0, 1  # key event values (2 = autorepeat: a scanner types each key once)


class KeyLines:
    """Turns a keyboard-wedge scanner's key events into code lines (bytes, like the UART's).

    feed(event) returns a finished line, None for a line that must be dropped (a key that is not on
    the map, or longer than MAX_LINE: the screen says BAD CODE instead of a wrong code going out),
    or () while the line goes on. Caps Lock is ignored: scanners type capitals with shift."""

    def __init__(self) -> None:
        self.chars: list[str] = []
        self.shift: set[int] = set()
        self.bad = False

    def feed(self, ev: InputEvent) -> bytes | None | tuple[()]:
        if ev.type != ecodes.EV_KEY:
            return ()
        if ev.code in SHIFTS:
            (self.shift.add if ev.value != _UP else self.shift.discard)(ev.code)
            return ()
        if ev.value != _DOWN:
            return ()
        if ev.code in ENDS:
            line, bad = "".join(self.chars), self.bad
            self.chars, self.bad = [], False
            if bad:
                return None
            return line.encode() if line else ()
        pair = KEYS.get(ev.code)
        if pair is None or len(self.chars) >= MAX_LINE:
            self.bad = True
        else:
            self.chars.append(pair[1] if self.shift else pair[0])
        return ()


async def device_events(path: str) -> AsyncIterator[InputEvent]:
    """Key events of the input device at `path`, grabbed: the keystrokes reach this process only, not
    a console or a desktop where a scanned code would be typed into whatever has the focus."""
    from evdev import InputDevice

    dev = InputDevice(path)
    try:
        dev.grab()
        async for ev in dev.async_read_loop():
            yield ev
    finally:
        try:
            dev.ungrab()
        except OSError:
            pass  # the device is gone (unplugged): nothing to give back
        dev.close()


_EVENT = struct.Struct("llHHi")  # struct input_event on 64-bit Linux: what /dev/input/eventN delivers


def pack_event(type_: int, code: int, value: int) -> bytes:
    return _EVENT.pack(0, 0, type_, code, value)


async def fifo_events(path: str) -> AsyncIterator[InputEvent]:
    """The simulated scanner: raw input_event records written into a FIFO (tests, demos), read into the
    same evdev InputEvent objects a real device gives. Opened read-write so it never sees end-of-file."""
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()
    loop.add_reader(fd, ready.set)
    buf = b""
    try:
        while True:
            await ready.wait()
            ready.clear()
            try:
                buf += os.read(fd, 4096)
            except BlockingIOError:
                continue
            n = len(buf) // _EVENT.size * _EVENT.size
            for rec in _EVENT.iter_unpack(buf[:n]):
                yield InputEvent(*rec)
            buf = buf[n:]
    finally:
        loop.remove_reader(fd)
        os.close(fd)


async def lines(events: AsyncIterator[Any]) -> AsyncIterator[bytes | None]:
    """The code lines (or None for a dropped one) of a stream of key events."""
    keys = KeyLines()
    async for ev in events:
        out = keys.feed(ev)
        if out != ():
            yield out  # type: ignore[misc]
