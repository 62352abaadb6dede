# Unit tests of the SSD1306 driver (fake I2C bus), buzzer patterns and relay pulse (fake PWM/pin).
import asyncio

import framebuf
from hx import sound
from hx.ssd1306 import SSD1306_I2C

import t


def _cmds(writes):
    return [w[1][1] for w in writes if len(w[1]) == 2 and w[1][0] == 0x80]


def test_ssd1306_init_and_show():
    bus = t.FakeI2C()
    d = SSD1306_I2C(128, 64, bus)
    cmds = _cmds(bus.writes)
    t.eq(cmds[0], 0xAE, "display off first")
    t.true(0x8D in cmds and cmds[cmds.index(0x8D) + 1] == 0x14, "charge pump on")
    t.true(0xAF in cmds, "display on")
    t.true(all(a == 0x3C for a, _ in bus.writes), "address 0x3C")
    data = [w[1] for w in bus.writes if w[1][0] == 0x40]
    t.eq(len(data), 1, "init clears the screen")
    t.eq(len(data[0]), 1025)
    bus.writes.clear()
    d.pixel(0, 0, 1)
    d.pixel(127, 63, 1)
    d.show()
    t.eq(_cmds(bus.writes), [0x21, 0, 127, 0x22, 0, 7], "full window")
    buf = bus.writes[-1][1][1:]
    t.eq(buf[0], 0x01, "MONO_VLSB: (0,0) is bit 0 of byte 0")
    t.eq(buf[1023], 0x80, "(127,63) is bit 7 of the last byte")
    t.eq(sum(1 for b in buf if b), 2)


def test_ssd1306_draws_text_like_framebuf():
    bus = t.FakeI2C()
    d = SSD1306_I2C(128, 64, bus, 0x3D)
    d.text("OK", 0, 0, 1)
    d.show()
    ref = bytearray(1024)
    framebuf.FrameBuffer(ref, 128, 64, framebuf.MONO_VLSB).text("OK", 0, 0, 1)
    t.eq(bus.writes[-1], (0x3D, b"\x40" + bytes(ref)))


def test_buzzer_patterns():
    for name in ("ok", "deny", "attention", "error"):
        pwm = t.FakePWM()
        asyncio.run(sound.play(pwm, name))
        tones = [v for k, v in pwm.log if k == "freq"]
        t.eq(tones, [f for f, _ in sound.PATTERNS[name] if f], name)
        t.eq(pwm.log[-1], ("duty", 0), "silent at the end")
    t.true(sound.PATTERNS["ok"] != sound.PATTERNS["deny"], "distinct")
    pwm = t.FakePWM()
    asyncio.run(sound.play(pwm, "nonsense"))
    t.eq([v for k, v in pwm.log if k == "freq"], [300, 300, 300], "unknown plays error")


def test_relay_pulse_and_cancel():
    pin = t.FakePin()
    asyncio.run(sound.pulse(pin, 20))
    t.eq(pin.log, [1, 0])
    pin = t.FakePin()

    async def cancelled():
        task = asyncio.create_task(sound.pulse(pin, 10000))
        await asyncio.sleep_ms(10)
        task.cancel()
        await asyncio.sleep_ms(10)

    asyncio.run(cancelled())
    t.eq(pin.log, [1, 0], "released even when cancelled")
