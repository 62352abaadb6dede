# Buzzer patterns per sound class and the relay pulse; both drive a PWM-/Pin-like object passed in.
import asyncio
import time
from micropython import const

_DUTY_ON = const(32768)  # 50 %: loudest for a passive piezo

# (frequency Hz or 0 for silence, duration ms). Distinct by ear: rising = ok, long low = deny,
# three short = attention (look at the screen), low triple = error.
PATTERNS = {
    "ok": ((2700, 70), (0, 30), (3400, 120)),
    "deny": ((440, 450),),
    "attention": ((1800, 90), (0, 70), (1800, 90), (0, 70), (1800, 90)),
    "error": ((300, 150), (0, 80), (300, 150), (0, 80), (300, 300)),
}


def pattern_ms(name):
    return sum(d for _, d in PATTERNS[name])


async def play(pwm, name):
    """Play one pattern; unknown names play `error` (a sound must never be silently skipped)."""
    pat = PATTERNS.get(name) or PATTERNS["error"]
    try:
        for freq, ms in pat:
            if freq:
                pwm.freq(freq)
                pwm.duty_u16(_DUTY_ON)
            else:
                pwm.duty_u16(0)
            await asyncio.sleep_ms(ms)
    finally:
        pwm.duty_u16(0)


async def pulse(pin, ms):
    """Close the relay for `ms` (turnstile: one entry), always releasing it, even if cancelled.
    Returns by how many ms the task woke late (a stalled loop): the pulse itself did not stretch if
    the board's relay has `close_for(ms)` (a hardware one-shot timer opens it at the deadline).

    `pin.value(1)` means closed: the board layer hands out an active-low relay already inverted."""
    t0 = time.ticks_ms()
    if hasattr(pin, "close_for"):
        pin.close_for(ms)
    else:
        pin.value(1)
    try:
        await asyncio.sleep_ms(ms)
    finally:
        pin.value(0)
    return time.ticks_diff(time.ticks_ms(), t0) - ms
