# MicroPython side of the MQTT client tests: `micropython mqtt_peer.py <host> <port> <scenario> <prefix>`.
# Prints one line per observation; the pytest side (test_mqtt_client.py) drives a real Mosquitto.
import asyncio  # noqa: I001  (t must come first: it puts the firmware on sys.path)
import sys

import t  # noqa: F401  (firmware on sys.path)
from hx.mqtt import MQTTClient

host, port, scenario, prefix = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
got = []


def log(ev, data=None):
    print("LOG", ev, data)


def on_message(topic, payload):
    got.append((topic, payload))
    print("GOT", topic, payload.decode())


async def roundtrip():
    c = MQTTClient(
        "vm-rt",
        host,
        port,
        user="dev-1",
        password="secret",
        keepalive=10,
        on_message=on_message,
        log=log,
        will=(prefix + "/status", b'{"v": 1, "state": "offline"}', True),
    )
    asyncio.create_task(c.run())
    print("SUBACK", await c.subscribe(prefix + "/echo", 1, 10000))
    print("PUBACK", await c.publish(prefix + "/echo", b"hello-qos1", 1, False, 10000))
    print("PUB0", await c.publish(prefix + "/echo", "hello-qos0", 0))
    print("RETAINED", await c.publish(prefix + "/status", b'{"v": 1, "state": "online"}', 1, True, 10000))
    for _ in range(200):
        if len(got) >= 2:
            break
        await asyncio.sleep_ms(25)
    print("DONE", len(got))
    await c.disconnect()


async def lwt():
    c = MQTTClient(
        "vm-lwt",
        host,
        port,
        keepalive=10,
        log=log,
        will=(prefix + "/status", b'{"v": 1, "state": "offline"}', True),
    )
    asyncio.create_task(c.run())
    print("RETAINED", await c.publish(prefix + "/status", b'{"v": 1, "state": "online"}', 1, True, 10000))
    while True:
        await asyncio.sleep_ms(1000)


async def reconnect():
    c = MQTTClient(
        "vm-rc",
        host,
        port,
        keepalive=10,
        on_message=on_message,
        log=log,
        backoff_ms=(200, 1000),
        retry_ms=1000,
    )
    asyncio.create_task(c.run())
    print("SUBACK", await c.subscribe(prefix + "/cmd", 1, 10000))
    # Wait for the broker to go away, then publish while it is down: it must arrive once it is back.
    while c.connected:
        await asyncio.sleep_ms(20)
    print("DOWN")
    print("PUBACK-WHILE-DOWN", await c.publish(prefix + "/late", b"sent-while-down", 1, True, 60000))
    n = len(got)
    while len(got) == n:
        await asyncio.sleep_ms(20)
    print("PUBACK-ECHO", await c.publish(prefix + "/ack", got[-1][1], 1, False, 10000))
    print("CONNECTS", c.connects)
    await c.disconnect()


async def stall():
    # keepalive 2 s: a broker that stops answering (what a WiFi drop looks like) is noticed in ~3 s.
    c = MQTTClient("vm-stall", host, port, keepalive=2, log=log, backoff_ms=(200, 1000), timeout_ms=1000)
    asyncio.create_task(c.run())
    while not c.connected:
        await asyncio.sleep_ms(20)
    print("UP")
    while c.connected:
        await asyncio.sleep_ms(20)
    print("DEAD")
    while not c.connected:
        await asyncio.sleep_ms(20)
    print("BACK", c.connects)
    print("PUBACK", await c.publish(prefix + "/after-stall", b"ok", 1, False, 10000))
    await c.disconnect()


asyncio.run({"roundtrip": roundtrip, "lwt": lwt, "reconnect": reconnect, "stall": stall}[scenario]())
