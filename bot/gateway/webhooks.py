"""What every webhook channel on the gateway needs, written once.

A platform (Telegram, Slack) posts an update; the channel reads its body up to a limit
(`read_body`), acknowledges it at once, and prepares the reply in the background
(`BackgroundReplies`); the ids already seen and the button payloads are in the gateway's state
(`bot.gateway.state`), whose local mode keeps them in a `BoundedDict`, a size-limited memory.
`json_error` is the shape of an error answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Coroutine, Hashable, Iterator, MutableMapping
from typing import Any, Generic, TypeVar

from aiohttp import web

logger = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedDict(MutableMapping[K, V], Generic[K, V]):
    """A dict of at most `capacity` entries that forgets its oldest entry first.

    Entries are kept in insertion order; setting a key already there keeps its place, as in a
    dict. Used as it is, the dict is first in, first out; a caller that calls `touch(key)` when
    it uses an entry (or pops and sets it again) makes it least recently used out instead.

    Not `cachetools.LRUCache`/`TTLCache`: cachetools is not installed (adding it to
    requirements.lock, an input of the model's fingerprint, would retrain the model), and its
    LRU touches an entry on every read, while some of our memories are first in, first out and
    the revoked cookies age out by their own clock.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[K, V] = OrderedDict()

    def __getitem__(self, key: K) -> V:
        return self._entries[key]

    def __setitem__(self, key: K, value: V) -> None:
        self._entries[key] = value
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def __delitem__(self, key: K) -> None:
        del self._entries[key]

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[K]:
        """Oldest first."""
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def touch(self, key: K) -> None:
        """Make an entry the newest (the last one to be forgotten); KeyError if absent."""
        self._entries.move_to_end(key)

    def popitem(self) -> tuple[K, V]:
        """Remove and return the oldest entry."""
        return self._entries.popitem(last=False)


class BackgroundReplies:
    """The replies a channel prepares after acknowledging the platform's request.

    The event loop keeps only a weak reference to a task: this set keeps each one alive until it
    ends. A failure is logged with its type only, never its message or traceback, which may quote
    what the user wrote.
    """

    def __init__(self, channel: str, log: logging.Logger = logger) -> None:
        self._channel = channel  # begins the log lines, written to the channel's own logger
        self._log = log
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        """Replies in progress."""
        return len(self._tasks)

    def start(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in the background."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._log.error(
                "%s: answering failed (%s)", self._channel, type(task.exception()).__name__
            )

    async def settle(self, timeout: float | None = None) -> bool:
        """Wait for the replies in progress, and those they start; False if some are still
        running at `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while self._tasks:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            await asyncio.wait(set(self._tasks), timeout=remaining)
        return True

    async def close(self, grace_seconds: float) -> None:
        """At shutdown, before the HTTP session closes: let the replies in progress finish for
        `grace_seconds`, then cancel the rest."""
        if not await self.settle(grace_seconds):
            self._log.warning(
                "%s: %d replies cancelled at shutdown", self._channel, len(self._tasks)
            )
        pending = list(self._tasks)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


class BodyTooLarge(Exception):
    """A request body longer than its route accepts."""

    def __init__(self, limit: int, size: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit
        self.size = size  # what was announced or read when the limit was passed


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request's body, at most `limit` bytes; `BodyTooLarge` as soon as it is longer.

    aiohttp's `client_max_size` only bounds `request.read()`; the stream is read here, so a
    webhook gets its own limit and nothing past `limit + 1` bytes is ever held in memory.
    """
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(limit, request.content_length)
    body = bytearray()
    while chunk := await request.content.read(limit + 1 - len(body)):
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(limit, len(body))
    return bytes(body)


def json_error(status: int, message: str) -> web.Response:
    """An error answer: `{"error": message}`, the message in French for the user."""
    return web.json_response({"error": message}, status=status)
