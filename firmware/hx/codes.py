# Turns raw scanner lines into codes (strip the tail, reject garbage) and suppresses re-reads of one code.
import time
from micropython import const

from hx.protocol import code_points

MAX_CODE = const(128)
_DEDUPE_SLOTS = const(8)


class CodeError(Exception):
    pass


def parse(raw):
    """bytes from the scanner (tail included or not) -> code str; CodeError says why it is not a code."""
    while raw and raw[-1] in (10, 13):
        raw = raw[:-1]
    while raw and raw[0] in (10, 13):
        raw = raw[1:]
    if not raw:
        raise CodeError("empty")
    if len(raw) > MAX_CODE * 4:
        raise CodeError("too long")
    for b in raw:
        # Control bytes are line noise or a binary payload, never part of an order code.
        if b < 32 or b == 127:
            raise CodeError("control characters")
    try:
        code = raw.decode("utf-8")
    except UnicodeError:
        raise CodeError("not UTF-8")
    # C1 and DEL by code point, from the bytes: iterating the str would intern each of its characters
    # (protocol.py); an overlong form (C1 BF, E0 82 85) decodes to one too.
    for o in code_points(raw):
        if 127 <= o < 160:
            raise CodeError("control characters")
    if len(code) > MAX_CODE:
        raise CodeError("too long")
    return code


class Dedupe:
    """Same code within window_ms of its last sighting is a re-read, not a new scan.

    The window slides: a code held in front of a continuous-mode scanner keeps being suppressed.
    A few recent codes are remembered (not just the last) so alternating two tickets is still caught.
    """

    def __init__(self, window_ms):
        self.window = window_ms
        self.seen = {}

    def is_repeat(self, code, now):
        last = self.seen.get(code)
        repeat = last is not None and time.ticks_diff(now, last) < self.window
        self.seen[code] = now
        if len(self.seen) > _DEDUPE_SLOTS:
            for k in [k for k in self.seen if time.ticks_diff(now, self.seen[k]) >= self.window]:
                del self.seen[k]
            while len(self.seen) > _DEDUPE_SLOTS:
                oldest = None
                for k in self.seen:
                    if oldest is None or time.ticks_diff(self.seen[oldest], self.seen[k]) > 0:
                        oldest = k
                del self.seen[oldest]
        return repeat

    def forget(self, code):
        """The scan was not taken (e.g. outbox full): let an immediate rescan through."""
        self.seen.pop(code, None)
