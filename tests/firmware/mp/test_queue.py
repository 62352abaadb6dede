# Unit tests of hx.queue: the two overflow policies and async get.
import asyncio

from hx.queue import DROP_OLDEST, REJECT_NEW, Queue

import t


def test_drop_oldest():
    q = Queue(2, DROP_OLDEST)
    t.eq(q.put(1), True)
    t.eq(q.put(2), True)
    t.eq(q.put(3), False)
    t.eq((q.items, q.dropped), ([2, 3], 1))


def test_reject_new():
    q = Queue(2, REJECT_NEW)
    q.put(1)
    q.put(2)
    t.eq(q.put(3), False)
    t.eq((q.items, q.dropped), ([1, 2], 1))


def test_async_get_waits():
    q = Queue(4, REJECT_NEW)

    async def go():
        async def later():
            await asyncio.sleep_ms(20)
            q.put("x")
            q.put("y")

        asyncio.create_task(later())
        return [await q.get(), await q.get()]

    t.eq(asyncio.run(go()), ["x", "y"])
