"""A Rasa lock store on atomic Redis operations, for several Rasa replicas sharing conversations.

Rasa's `RedisLockStore` reads a ticket list, changes it in Python and writes it back: two
processes interleave and lose or hang messages. Here a conversation's lock is one Redis key
taken with `SET key token NX PX lifetime` (atomic), kept alive while its holder works, and
released by a Lua script that deletes it only if it still holds the holder's token. A lock left
by a dead process expires after `lock_lifetime`; a waiter gives up after `acquire_timeout` with
Rasa's `LockError` (the gateway then answers "try again").

endpoints.yml:

    lock_store:
      type: bot.production.lock_store.AtomicRedisLockStore
      url: redis://127.0.0.1:6379/1      # or REDIS_URL
      key_prefix: "assistant:lock:"
      lock_lifetime: 20                   # seconds; renewed every third of it while held
      acquire_timeout: 10                 # seconds
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LockError, LockStore
from rasa.utils.endpoints import EndpointConfig
from redis import asyncio as aioredis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

DEFAULT_URL = "redis://127.0.0.1:6379/1"
DEFAULT_PREFIX = "assistant:lock:"
DEFAULT_LIFETIME_S = 20.0
DEFAULT_ACQUIRE_TIMEOUT_S = 10.0
FIRST_POLL_S, MAX_POLL_S = 0.005, 0.1

# Delete / extend the key only while it still holds our token: never someone else's lock.
RELEASE = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)
RENEW = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
)


class AtomicRedisLockStore(LockStore):
    """One Redis key per conversation, taken atomically; see the module's docstring."""

    def __init__(
        self,
        endpoint_config: EndpointConfig | None = None,
        url: str | None = None,
        key_prefix: str | None = None,
        lock_lifetime: float | None = None,
        acquire_timeout: float | None = None,
    ) -> None:
        kwargs: dict[str, Any] = dict(endpoint_config.kwargs) if endpoint_config else {}
        self.url = (
            url
            or (endpoint_config.url if endpoint_config else None)
            or os.environ.get("REDIS_URL", DEFAULT_URL)
        )
        self.key_prefix = key_prefix or kwargs.get("key_prefix", DEFAULT_PREFIX)
        self.lock_lifetime = float(lock_lifetime or kwargs.get("lock_lifetime", DEFAULT_LIFETIME_S))
        self.acquire_timeout = float(
            acquire_timeout or kwargs.get("acquire_timeout", DEFAULT_ACQUIRE_TIMEOUT_S)
        )
        # One client per event loop: Rasa's server and the tests each run their own loop.
        self._clients: dict[int, aioredis.Redis] = {}
        super().__init__()

    def _redis(self) -> aioredis.Redis:
        loop = id(asyncio.get_running_loop())
        if loop not in self._clients:
            self._clients[loop] = aioredis.Redis.from_url(
                self.url, socket_timeout=5, socket_connect_timeout=5
            )
        return self._clients[loop]

    @asynccontextmanager
    async def lock(
        self,
        conversation_id: str,
        lock_lifetime: float | None = None,  # Rasa passes its own default: ours wins
        wait_time_in_seconds: float = 0,
    ) -> AsyncIterator[TicketLock]:
        """Hold the conversation's lock for the duration of the block (or raise `LockError`)."""
        key = self.key_prefix + conversation_id
        token = secrets.token_hex(16)
        await self._acquire(key, token, conversation_id)
        keeper = asyncio.create_task(self._keep_alive(key, token))
        try:
            yield TicketLock(conversation_id)
        finally:
            keeper.cancel()
            await self._release(key, token)

    async def _acquire(self, key: str, token: str, conversation_id: str) -> None:
        lifetime_ms = int(self.lock_lifetime * 1000)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.acquire_timeout
        pause = FIRST_POLL_S
        while True:
            try:
                if await self._redis().set(key, token, nx=True, px=lifetime_ms):
                    return
            except RedisError as error:  # Redis down or restarting: retry until the deadline
                logger.warning("lock store unreachable: %s", type(error).__name__)
            if loop.time() >= deadline:
                raise LockError(
                    f"Could not acquire lock for conversation_id '{conversation_id}' "
                    f"within {self.acquire_timeout:g} s."
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_POLL_S)

    async def _keep_alive(self, key: str, token: str) -> None:
        """Renew the lock while its holder works (a slow action), so it never expires under it."""
        lifetime_ms = int(self.lock_lifetime * 1000)
        while True:
            await asyncio.sleep(self.lock_lifetime / 3)
            try:
                if not await self._redis().eval(RENEW, 1, key, token, lifetime_ms):
                    logger.warning("a conversation lock expired while held")
                    return
            except RedisError as error:
                logger.warning("could not renew a conversation lock: %s", type(error).__name__)

    async def _release(self, key: str, token: str) -> None:
        try:
            await self._redis().eval(RELEASE, 1, key, token)
        except RedisError as error:  # the key expires by itself after lock_lifetime
            logger.warning("could not release a conversation lock: %s", type(error).__name__)

    # Rasa's ticket-lock interface: not used by `lock()` above, kept coherent for other callers.
    def get_lock(self, conversation_id: str) -> TicketLock | None:
        return None

    def delete_lock(self, conversation_id: str) -> None:
        return None

    def save_lock(self, lock: TicketLock) -> None:
        return None

    def is_someone_waiting(self, conversation_id: str) -> bool:
        return False
