"""Live events of the support desk (new handoff, new turn, taken, released), fanned out to
every open console. `SupportEvents` reaches the consoles of this gateway process; the gateway
replaces it with one that goes through Redis when several gateways share the work
(`bot.gateway.state.RedisEvents`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

QUEUE_SIZE = 256


class SupportEvents:
    def __init__(self) -> None:
        self._subscribers: set[asyncio.Queue] = set()
        # Called once for each event published here (not for those of other gateways): counts.
        self.observers: list[Callable[[dict[str, Any]], None]] = []

    async def publish(self, event: dict[str, Any]) -> None:
        """Hand `event` to every console subscribed."""
        self.observe(event)
        self.deliver(event)

    def observe(self, event: dict[str, Any]) -> None:
        for observer in self.observers:
            observer(event)

    def deliver(self, event: dict[str, Any]) -> None:
        """Hand `event` to this process's subscribers; a subscriber too slow to keep up misses
        events (its queue is full) and reloads the queue on its next `resync` event."""
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                queue.get_nowait()
                queue.put_nowait({"type": "resync"})

    @asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue]:
        queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)
        self._subscribers.add(queue)
        try:
            yield queue
        finally:
            self._subscribers.discard(queue)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)
