# Pure health rules: the watchdog is fed only while the UI loop turns, the link makes progress and the
# outbox drains; too many task crashes in a short window ask for a reset.
import time
from micropython import const

UI_STALL_MS = const(10000)  # the display task drives every timeout on screen
LINK_STALL_MS = const(180000)  # the MQTT task waits for WiFi, tries to connect or hears the broker
DRAIN_STALL_MS = const(600000)  # connected, gateway up, scans waiting, and no verdict for 10 min
STABLE_MS = const(30000)  # a boot that ran this long healthy (or got online) is not a boot loop
CRASH_LIMIT = const(5)
CRASH_WINDOW_MS = const(120000)


def problem(now, ui_at, link_at, drain_at, connected, gw_up, queued):
    """None while healthy, else why not (then the watchdog is no longer fed and resets the chip).

    ui_at / link_at / drain_at: ticks of the last display tick, the last sign of MQTT progress, and the
    last moment the outbox was empty or a verdict came."""
    if time.ticks_diff(now, ui_at) > UI_STALL_MS:
        return "ui stalled"
    if time.ticks_diff(now, link_at) > LINK_STALL_MS:
        return "link stalled"
    if connected and gw_up and queued and time.ticks_diff(now, drain_at) > DRAIN_STALL_MS:
        return "outbox stuck"
    return None


class Crashes:
    """Ticks of the last CRASH_LIMIT task crashes."""

    def __init__(self):
        self.at = []

    def add(self, now):
        """Record a crash at `now`; True when CRASH_LIMIT of them fell within CRASH_WINDOW_MS."""
        self.at = self.at[1 - CRASH_LIMIT:] + [now]
        return len(self.at) >= CRASH_LIMIT and time.ticks_diff(now, self.at[0]) <= CRASH_WINDOW_MS
