# A bounded asyncio queue with an explicit overflow policy (MicroPython's asyncio has no Queue).
import asyncio
from micropython import const

DROP_OLDEST = const(0)  # the newest item matters more (e.g. which sound to play)
REJECT_NEW = const(1)  # what is queued must happen; the caller is told and counts/logs it


class Queue:
    def __init__(self, maxlen, policy):
        self.items = []
        self.maxlen = maxlen
        self.policy = policy
        self.dropped = 0
        self._ev = asyncio.Event()

    def __len__(self):
        return len(self.items)

    def put(self, item):
        """Never blocks. False when the item (or, with DROP_OLDEST, the oldest one) was dropped."""
        ok = True
        if len(self.items) >= self.maxlen:
            self.dropped += 1
            ok = False
            if self.policy == REJECT_NEW:
                return False
            self.items.pop(0)
        self.items.append(item)
        self._ev.set()
        return ok

    async def get(self):
        while not self.items:
            self._ev.clear()
            await self._ev.wait()
        return self.items.pop(0)
