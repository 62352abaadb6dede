# Pure time rules: use windows, weekday and time-of-day masks, local days — all from `now` and a time zone.
from __future__ import annotations

import functools
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The TIMEZONE setting's default; functions called without the gateway's settings fall back to it.
DEFAULT_TIMEZONE = "Asia/Shanghai"


def known_zone(name: str) -> str:
    """`name` when it is an IANA time zone name; ValueError otherwise."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"unknown time zone {name!r}") from err
    return name


WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def local(now: float, tz: tzinfo) -> datetime:
    return datetime.fromtimestamp(now, tz)


@functools.lru_cache(maxsize=256)
def day_key(now: float, tz: tzinfo) -> str:
    """The local calendar day, for per-day limits and re-entry: counters reset at local midnight.

    Cached: a batch decides all its scans at one `now`, and each scan asks for the day several times.
    """
    return local(now, tz).strftime("%Y%m%d")


def counting_day(now: float, tz: tzinfo, counted: str | None) -> str:
    """The day a use at `now` counts on, given the day the order's counter is on (`counted`).

    Never an earlier day than the counter's: batches stamped just before midnight can commit after
    ones stamped just after (workers' clocks differ by a little, a commit waits on a lock), and going
    back would reset the counter and let the new day's limit be taken twice. Keys compare as text.
    """
    today = day_key(now, tz)
    return counted if counted is not None and counted > today else today


def parse_hhmm(text: str) -> int:
    """'09:30' → minutes after midnight; raises ValueError with the offending text."""
    try:
        h, m = text.split(":")
        hh, mm = int(h), int(m)
    except ValueError as err:
        raise ValueError(f"time must be HH:MM, got {text!r}") from err
    if not (0 <= hh <= 24 and 0 <= mm < 60) or hh * 60 + mm > 1440:
        raise ValueError(f"time must be HH:MM within a day, got {text!r}")
    return hh * 60 + mm


def fmt_minutes(m: int) -> str:
    return f"{m // 60:02d}:{m % 60:02d}"


def days_text(mask: str) -> str:
    """'1111100' → 'Mon-Fri'; other masks list their days."""
    on = [i for i, c in enumerate(mask) if c == "1"]
    if not on:
        return "never"
    if on == list(range(on[0], on[-1] + 1)) and len(on) > 2:
        return f"{WEEKDAYS[on[0]]}-{WEEKDAYS[on[-1]]}"
    return ",".join(WEEKDAYS[i] for i in on)


def outside_hours(rules: dict[str, Any], now: float, tz: tzinfo) -> tuple[str, str] | None:
    """None when `now` is inside the weekday/hours masks, else (short line, sentence) saying when it is allowed.

    hours = [start, end] in minutes; end < start means the window runs past midnight (a night club),
    and then the weekday that counts is the one the window started on.
    """
    t = local(now, tz)
    minute = t.hour * 60 + t.minute
    weekday = t.weekday()
    hours = rules.get("hours")
    mask = rules.get("days")
    if hours:
        start, end = int(hours[0]), int(hours[1])
        if start <= end:
            inside = start <= minute < end
        else:
            inside = minute >= start or minute < end
            if minute < end:
                weekday = (weekday - 1) % 7
        span = f"{fmt_minutes(start)}-{fmt_minutes(end)}"
        if not inside:
            when = f"{days_text(mask)} {span}" if mask else span
            return span, f"valid {when}"
    if mask and mask[weekday] != "1":
        return days_text(mask), f"valid {days_text(mask)} only"
    return None
