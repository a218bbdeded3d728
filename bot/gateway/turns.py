"""One turn at a time per conversation, in arrival order, in one process (the local mode's
turn lock, `bot.gateway.state.MemoryState`; with Redis, gateways share a lock instead)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager


class ConversationTurns:
    """A lock per conversation, forgotten as soon as no turn holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}  # key -> (lock, turns)

    def waiting(self, key: Hashable) -> int:
        """How many turns of `key` hold or await its lock."""
        return self._locks.get(key, (None, 0))[1]

    @asynccontextmanager
    async def turn(self, key: Hashable) -> AsyncIterator[None]:
        lock, turns = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, turns + 1)
        try:
            async with lock:
                yield
        finally:
            lock, turns = self._locks[key]
            if turns == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, turns - 1)
