# MicroPython side of the frame streaming test: `micropython frame_peer.py <host> <port> <topic> <how>`.
# Publishes one 150 KB frame with the firmware's MQTT client, `how` = stream (publish_frame) or join
# (publish, which builds the packet in one piece): under a small heap only streaming fits.
import asyncio  # noqa: I001  (t must come first: it puts the firmware on sys.path)
import gc
import sys

import t  # noqa: F401  (firmware on sys.path)
from hx.mqtt import MQTTClient

host, port, topic, how = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


async def main():
    c = MQTTClient("vm-frame", host, port, keepalive=10, log=lambda *a: None)
    asyncio.create_task(c.run())
    while not c.connected:
        await asyncio.sleep_ms(20)
    body = bytearray(150000)
    for i in range(0, len(body), 997):
        body[i] = i % 251
    head = b'{"v":1,"sid":"f-1","fmt":"gray","w":500,"h":300}\n'
    gc.collect()
    try:
        if how == "stream":
            ok = await c.publish_frame(topic, head, body)
        else:
            ok = await c.publish(topic, head + body, 0)
    except MemoryError:
        ok = "MemoryError"
    print("SENT", ok)
    await asyncio.sleep_ms(300)
    await c.disconnect()


asyncio.run(main())
