"""What the gateway remembers between requests, behind one interface with two implementations.

`GatewayState` is every piece of state a request may need that another request left: the rate
buckets, the turn counts, the buttons offered to each conversation, the webhook deliveries
already handled (Slack and Telegram retry), the revoked session cookies, the Telegram button
ids, one turn at a time per conversation, and the support desk's live events for the consoles.

- `MemoryState` keeps it in this process (the local mode: one gateway);
- `RedisState` keeps it in Redis, every key with a TTL, every read-and-change one atomic
  operation (a Lua script or `SET NX`), and the live events on a pub/sub channel: any number
  of gateways behind a load balancer then share the limits and the handoffs, and no request
  needs to come back to the gateway that served the previous one.

`gateway_state()` chooses at start-up: Redis when `GATEWAY_REDIS_URL` is set (the production
mode sets it to `REDIS_URL`), memory otherwise. A Redis that does not answer makes the gateway
answer 503 with a French sentence (`state_unavailable`), never forget a limit.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import secrets
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from redis import asyncio as aioredis
from redis.exceptions import LockError, RedisError

from bot.gateway.limits import MAX_TRACKED_KEYS, RateLimiter
from bot.gateway.turns import ConversationTurns
from bot.gateway.webhooks import BoundedDict, json_error
from bot.support.accounts import LoginThrottle
from bot.support.events import SupportEvents

logger = logging.getLogger(__name__)

MAX_PAYLOADS_PER_SENDER = 200
# One turn of a conversation holds its lock at most this long (a Rasa call times out at 15 s);
# a gateway that dies holding it blocks that conversation no longer than this.
TURN_LOCK_SECONDS = 60.0
TURN_WAIT_SECONDS = 60.0  # a turn waiting behind others gives up after this (the user retries)
UNAVAILABLE = (
    "L'assistant est momentanément indisponible. Réessayez dans un instant ; si le problème "
    "persiste, contactez votre assistance académique."
)


class StateUnavailable(Exception):
    """The shared state (Redis) did not answer: the request cannot be checked, so it is refused."""


class TurnCounter:
    """User messages per conversation in its current session, forgotten after the session's
    idle expiry, like Rasa's session (the local mode's count)."""

    def __init__(self, limit: int, idle_seconds: float) -> None:
        self.limit = limit
        self._idle = idle_seconds
        self._counts: BoundedDict[str, tuple[int, float]] = BoundedDict(MAX_TRACKED_KEYS)

    def add(self, sender: str, now: float | None = None) -> bool:
        """Count one message; False when the conversation already reached the limit."""
        now = time.monotonic() if now is None else now
        count, last = self._counts.pop(sender, (0, now))
        if now - last > self._idle:
            count = 0
        allowed = not self.limit or count < self.limit
        self._counts[sender] = (count + 1 if allowed else count, now)
        return allowed

    def reset(self, sender: str) -> None:
        self._counts.pop(sender, None)


class LoginAttempts(ABC):
    """The console's login throttle (`bot.support.accounts.LoginThrottle`'s rules): attempts
    per (login, address) and per address in a sliding window, counted before the check."""

    @abstractmethod
    async def attempt(self, login: str, address: str) -> float:
        """Count one attempt and return 0, or return the seconds to wait (nothing counted)."""

    @abstractmethod
    async def slowdown(self, login: str, address: str) -> float:
        """Seconds to hold the answer to a failed attempt: more after each failure."""

    @abstractmethod
    async def succeeded(self, login: str, address: str) -> None: ...


class MemoryLoginAttempts(LoginAttempts):
    def __init__(self, throttle: LoginThrottle) -> None:
        self.throttle = throttle

    async def attempt(self, login: str, address: str) -> float:
        return self.throttle.attempt(login, address)

    async def slowdown(self, login: str, address: str) -> float:
        return self.throttle.slowdown(login, address)

    async def succeeded(self, login: str, address: str) -> None:
        self.throttle.succeeded(login, address)


class GatewayState(ABC):
    """Everything a gateway shares with the other gateways; see the module's docstring."""

    events: SupportEvents  # the support desk's live events (the consoles subscribe)

    def __init__(self) -> None:
        self._waiting: Counter[str] = Counter()  # this process's turns holding or awaiting

    # -- limits
    @abstractmethod
    async def allow(self, bucket: str, key: str, per_minute: float, burst: float) -> bool:
        """Take one token from `key`'s bucket of kind `bucket` (`per_minute` refill, at most
        `burst`); False, nothing taken, when it is empty."""

    @abstractmethod
    async def count_turn(self, sender: str, limit: int, idle_seconds: float) -> bool:
        """Count one message of `sender`'s session; False when it already reached `limit`
        (0: no limit). The count is forgotten after `idle_seconds` without a message."""

    @abstractmethod
    async def reset_turns(self, sender: str) -> None: ...

    # -- buttons offered to a conversation
    @abstractmethod
    async def offer_buttons(self, sender: str, payloads: list[str], ttl: float) -> None:
        """Remember these payloads as offered (the last MAX_PAYLOADS_PER_SENDER, for `ttl` s)."""

    @abstractmethod
    async def was_offered(self, sender: str, payload: str) -> bool: ...

    @abstractmethod
    async def forget_buttons(self, sender: str) -> None: ...

    # -- deliveries, cookies, small values
    @abstractmethod
    async def first_delivery(self, kind: str, key: str, ttl: float) -> bool:
        """True the first time `key` of `kind` is seen within `ttl` seconds (atomic: of two
        gateways receiving the same retry at once, one only gets True)."""

    @abstractmethod
    async def remember(self, kind: str, key: str, value: str, ttl: float) -> None: ...

    @abstractmethod
    async def recall(self, kind: str, key: str, ttl: float) -> str | None:
        """The value remembered for `key`, kept `ttl` more seconds; None if absent or expired."""

    @abstractmethod
    async def forget(self, kind: str, key: str) -> None: ...

    @abstractmethod
    def login_attempts(self, throttle: LoginThrottle) -> LoginAttempts:
        """The console's login throttle with `throttle`'s limits, kept where this state is."""

    # -- one turn at a time per conversation
    @asynccontextmanager
    async def turn(self, key: str) -> AsyncIterator[None]:
        """Hold `key`'s lock for the block: one turn at a time, across gateways."""
        self._waiting[key] += 1
        try:
            async with self._locked(key):
                yield
        finally:
            self._waiting[key] -= 1
            if not self._waiting[key]:
                del self._waiting[key]

    def waiting(self, key: str) -> int:
        """How many turns of `key` hold or await its lock in this process (a flood's size)."""
        return self._waiting.get(key, 0)

    @abstractmethod
    def _locked(self, key: str) -> Any: ...

    # -- lifetime
    @abstractmethod
    async def start(self) -> None:
        """Called once the event loop runs (the gateway's start-up)."""

    @abstractmethod
    async def close(self) -> None:
        """Called at the gateway's shutdown."""


class MemoryState(GatewayState):
    """The local mode: one gateway process, its memory bounded (oldest entries go first)."""

    def __init__(self) -> None:
        super().__init__()
        self.events = SupportEvents()
        self._buckets: dict[tuple[str, float, float], RateLimiter] = {}
        self._turn_counters: dict[tuple[int, float], TurnCounter] = {}
        self._offered: BoundedDict[str, dict[str, None]] = BoundedDict(MAX_TRACKED_KEYS)
        self._values: BoundedDict[tuple[str, str], tuple[str | None, float]] = BoundedDict(
            MAX_TRACKED_KEYS
        )
        self._turns = ConversationTurns()  # FIFO: arrival order

    async def allow(self, bucket: str, key: str, per_minute: float, burst: float) -> bool:
        limiter = self._buckets.setdefault(
            (bucket, per_minute, burst), RateLimiter(per_minute, burst)
        )
        return limiter.allow(key)

    def _counter(self, limit: int, idle_seconds: float) -> TurnCounter:
        return self._turn_counters.setdefault(
            (limit, idle_seconds), TurnCounter(limit, idle_seconds)
        )

    async def count_turn(self, sender: str, limit: int, idle_seconds: float) -> bool:
        return self._counter(limit, idle_seconds).add(sender)

    async def reset_turns(self, sender: str) -> None:
        for counter in self._turn_counters.values():
            counter.reset(sender)

    async def offer_buttons(self, sender: str, payloads: list[str], ttl: float) -> None:
        offered = self._offered.pop(sender, {})
        for payload in payloads:  # offered again: the newest, the last one forgotten
            offered.pop(payload, None)
            offered[payload] = None
        while len(offered) > MAX_PAYLOADS_PER_SENDER:
            offered.pop(next(iter(offered)))
        self._offered[sender] = offered

    async def was_offered(self, sender: str, payload: str) -> bool:
        return payload in self._offered.get(sender, ())

    async def forget_buttons(self, sender: str) -> None:
        self._offered.pop(sender, None)

    def _fresh(self, kind: str, key: str) -> str | None:
        value, until = self._values.get((kind, key), (None, 0.0))
        return value if until > time.monotonic() else None

    async def first_delivery(self, kind: str, key: str, ttl: float) -> bool:
        if self._fresh(kind, key) is not None:
            return False
        await self.remember(kind, key, "", ttl)
        return True

    async def remember(self, kind: str, key: str, value: str, ttl: float) -> None:
        self._values.pop((kind, key), None)  # set again: the newest
        self._values[(kind, key)] = (value, time.monotonic() + ttl)

    async def recall(self, kind: str, key: str, ttl: float) -> str | None:
        value = self._fresh(kind, key)
        if value is not None:
            await self.remember(kind, key, value, ttl)
        return value

    async def forget(self, kind: str, key: str) -> None:
        self._values.pop((kind, key), None)

    def _locked(self, key: str) -> Any:
        return self._turns.turn(key)

    def login_attempts(self, throttle: LoginThrottle) -> LoginAttempts:
        return MemoryLoginAttempts(throttle)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


# --------------------------------------------------------------------------- Redis

# A token bucket, read and written in one step; the time is Redis's own (gateways' clocks may
# differ). KEYS[1]: the bucket; ARGV: tokens per second, burst.
TAKE_TOKEN = """
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(bucket[1]) or burst
local at = tonumber(bucket[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 1)
return allowed
"""
# A conversation's turn count. KEYS[1]: the count; ARGV: limit (0: none), idle seconds.
COUNT_TURN = """
local limit, idle = tonumber(ARGV[1]), tonumber(ARGV[2])
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if limit > 0 and count >= limit then
  redis.call('EXPIRE', KEYS[1], idle)
  return 0
end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], idle)
return 1
"""
# Buttons offered: a sorted set scored by a per-conversation sequence, the last N kept.
# KEYS[1]: the set, KEYS[2]: the sequence; ARGV: keep, ttl, payloads...
OFFER_BUTTONS = """
local keep, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 3, #ARGV do
  redis.call('ZADD', KEYS[1], redis.call('INCR', KEYS[2]), ARGV[i])
end
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -keep - 1)
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('EXPIRE', KEYS[2], ttl)
return redis.call('ZCARD', KEYS[1])
"""

# The console's login attempts: one sorted set per (login, address) and per address, scored by
# Redis's clock. KEYS: pair, address; ARGV: window seconds, pair limit, address limit, member.
LOGIN_ATTEMPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local window = tonumber(ARGV[1])
local limits = {tonumber(ARGV[2]), tonumber(ARGV[3])}
local wait = 0
for i = 1, 2 do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  if redis.call('ZCARD', KEYS[i]) >= limits[i] then
    local oldest = tonumber(redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')[2])
    wait = math.max(wait, oldest + window - now)
  end
end
if wait > 0 then
  return tostring(wait)
end
for i = 1, 2 do
  redis.call('ZADD', KEYS[i], now, ARGV[4])
  redis.call('EXPIRE', KEYS[i], math.ceil(window))
end
return '0'
"""


class RedisLoginAttempts(LoginAttempts):
    """`LoginThrottle`'s rules on Redis: N gateways do not give an attacker N times the tries."""

    def __init__(self, state: RedisState, throttle: LoginThrottle) -> None:
        self._state = state
        self._limits = throttle
        self._script = state._redis.register_script(LOGIN_ATTEMPT)

    def _keys(self, login: str, address: str) -> list[str]:
        pair = f"{login.strip().lower()}\n{address}"
        return [self._state._key("login-pair", pair), self._state._key("login-address", address)]

    async def attempt(self, login: str, address: str) -> float:
        keys = self._keys(login, address)
        args = [self._limits.window_seconds, self._limits.per_login, self._limits.per_address]
        args.append(secrets.token_hex(8))  # each attempt its own member
        return float(await self._state._call(lambda: self._script(keys=keys, args=args)))

    async def slowdown(self, login: str, address: str) -> float:
        pair = self._keys(login, address)[0]
        failures = await self._state._call(lambda: self._state._redis.zcard(pair))
        return min(1.0, self._limits.slowdown_seconds * failures)

    async def succeeded(self, login: str, address: str) -> None:
        pair, by_address = self._keys(login, address)
        await self._state._call(lambda: self._state._redis.delete(pair))
        await self._state._call(lambda: self._state._redis.zpopmax(by_address))


class RedisEvents(SupportEvents):
    """The desk's events through a Redis pub/sub channel: an event published by any gateway
    reaches the consoles connected to every gateway. One listener per gateway hands each event
    to its own consoles; after a Redis outage they get a `resync` (they reload the queue)."""

    def __init__(self, client: aioredis.Redis, channel: str) -> None:
        super().__init__()
        self._redis = client
        self._channel = channel
        self._listener: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()

    async def publish(self, event: dict[str, Any]) -> None:
        self.observe(event)
        try:
            await self._redis.publish(self._channel, json.dumps(event))
        except RedisError as error:  # the turn is stored: the consoles see it on their next load
            logger.warning("live event not published: %s", type(error).__name__)

    async def start(self) -> None:
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen())
            await asyncio.wait_for(self._listening.wait(), timeout=10)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None

    async def _listen(self) -> None:
        pause = 0.1
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._channel)
                if self._listening.is_set():
                    self.deliver({"type": "resync"})  # events may have been missed meanwhile
                self._listening.set()
                pause = 0.1
                while True:
                    message = await pubsub.get_message(timeout=30)
                    if message is not None and message.get("type") == "message":
                        self.deliver(json.loads(message["data"]))
            except (RedisError, OSError, ValueError) as error:
                logger.warning("live events: Redis unreachable (%s)", type(error).__name__)
                self._listening.set()  # start-up goes on; the listener keeps trying
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
            finally:
                await pubsub.reset()


class RedisState(GatewayState):
    """Any number of gateways sharing one Redis; every key under `prefix`, every key with a TTL."""

    def __init__(self, url: str, prefix: str = "assistant:gateway:") -> None:
        super().__init__()
        self.url = url
        self.prefix = prefix
        self._redis = aioredis.Redis.from_url(
            url, socket_timeout=5, socket_connect_timeout=5, decode_responses=True
        )
        self.events = RedisEvents(self._redis, prefix + "events")
        self._take_token = self._redis.register_script(TAKE_TOKEN)
        self._count_turn = self._redis.register_script(COUNT_TURN)
        self._offer_buttons = self._redis.register_script(OFFER_BUTTONS)

    def _key(self, *parts: str) -> str:
        # Hashed: a key never holds a cookie or a Slack/Telegram id in clear in Redis.
        digest = hashlib.sha256("\n".join(parts[1:]).encode()).hexdigest()[:40]
        return f"{self.prefix}{parts[0]}:{digest}"

    async def _call(self, work: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await work()
        except RedisError as error:
            logger.warning("gateway state: Redis unreachable (%s)", type(error).__name__)
            raise StateUnavailable() from None

    async def allow(self, bucket: str, key: str, per_minute: float, burst: float) -> bool:
        keys = [self._key("bucket", bucket, key)]
        args = [per_minute / 60, burst]
        return bool(await self._call(lambda: self._take_token(keys=keys, args=args)))

    async def count_turn(self, sender: str, limit: int, idle_seconds: float) -> bool:
        keys = [self._key("turns", sender)]
        args = [limit, max(1, int(idle_seconds))]
        return bool(await self._call(lambda: self._count_turn(keys=keys, args=args)))

    async def reset_turns(self, sender: str) -> None:
        await self._call(lambda: self._redis.delete(self._key("turns", sender)))

    async def offer_buttons(self, sender: str, payloads: list[str], ttl: float) -> None:
        if not payloads:
            return
        keys = [self._key("offered", sender), self._key("offered-seq", sender)]
        args = [MAX_PAYLOADS_PER_SENDER, max(1, int(ttl)), *payloads]
        await self._call(lambda: self._offer_buttons(keys=keys, args=args))

    async def was_offered(self, sender: str, payload: str) -> bool:
        key = self._key("offered", sender)
        return await self._call(lambda: self._redis.zscore(key, payload)) is not None

    async def forget_buttons(self, sender: str) -> None:
        keys = self._key("offered", sender), self._key("offered-seq", sender)
        await self._call(lambda: self._redis.delete(*keys))

    async def first_delivery(self, kind: str, key: str, ttl: float) -> bool:
        name = self._key(kind, key)
        return bool(
            await self._call(lambda: self._redis.set(name, "1", nx=True, ex=max(1, int(ttl))))
        )

    async def remember(self, kind: str, key: str, value: str, ttl: float) -> None:
        name = self._key(kind, key)
        await self._call(lambda: self._redis.set(name, value, ex=max(1, int(ttl))))

    async def recall(self, kind: str, key: str, ttl: float) -> str | None:
        name = self._key(kind, key)
        return await self._call(lambda: self._redis.getex(name, ex=max(1, int(ttl))))

    async def forget(self, kind: str, key: str) -> None:
        await self._call(lambda: self._redis.delete(self._key(kind, key)))

    def login_attempts(self, throttle: LoginThrottle) -> LoginAttempts:
        return RedisLoginAttempts(self, throttle)

    @asynccontextmanager
    async def _locked(self, key: str) -> AsyncIterator[None]:
        # redis-py's lock: SET NX PX to take it, a Lua script to release only our own token.
        lock = self._redis.lock(
            self._key("turn", key),
            timeout=TURN_LOCK_SECONDS,
            sleep=0.01,
            blocking_timeout=TURN_WAIT_SECONDS,
            thread_local=False,
        )
        try:
            acquired = await lock.acquire()
        except RedisError as error:
            logger.warning("turn lock: Redis unreachable (%s)", type(error).__name__)
            raise StateUnavailable() from None
        if not acquired:
            logger.warning("a turn waited %g s for its conversation and gave up", TURN_WAIT_SECONDS)
            raise StateUnavailable()
        try:
            yield
        finally:
            try:
                await lock.release()
            except (LockError, RedisError) as error:  # it expires by itself
                logger.warning("turn lock not released: %s", type(error).__name__)

    async def start(self) -> None:
        await self.events.start()

    async def close(self) -> None:
        await self.events.close()
        await self._redis.close(close_connection_pool=True)


def gateway_state(url: str | None = None) -> GatewayState:
    """`RedisState` on `GATEWAY_REDIS_URL` when it is set, otherwise `MemoryState`."""
    url = os.environ.get("GATEWAY_REDIS_URL", "") if url is None else url
    if url.strip():
        logger.info("gateway state in Redis (several gateways may share it)")
        return RedisState(url.strip())
    return MemoryState()


STATE = web.AppKey("gateway_state", GatewayState)


@web.middleware
async def state_unavailable(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Redis down: a French 503 (a webhook platform retries later), never a check skipped."""
    try:
        return await handler(request)
    except StateUnavailable:
        return json_error(503, UNAVAILABLE)


async def state_lifetime(app: web.Application) -> AsyncIterator[None]:
    """`cleanup_ctx`: the state's listener runs while the gateway does."""
    await app[STATE].start()
    yield
    await app[STATE].close()
