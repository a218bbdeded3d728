"""The gateway's shared state (bot/gateway/state.py) against the real Redis: two `RedisState`s
stand for two gateways; every key has a TTL; what two gateways do at once is counted once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.fernet import Fernet
from redis import asyncio as aioredis

from bot.db import create_schema
from bot.gateway.app import create_app
from bot.gateway.state import (
    MAX_PAYLOADS_PER_SENDER,
    UNAVAILABLE,
    GatewayState,
    MemoryState,
    RedisState,
    StateUnavailable,
)
from bot.local_stack import free_port
from bot.personal_data.vault import Vault
from bot.support.accounts import LoginThrottle
from tests.conftest import redis_url

REDIS = redis_url(11)  # this file's own Redis database


def run(scenario: Callable[..., Awaitable[None]], *states: str) -> None:
    """Run `scenario(*gateways)` with fresh states ("redis": sharing one Redis prefix,
    "memory": each its own), then delete the Redis keys they wrote."""
    prefix = f"test-{uuid.uuid4().hex[:8]}:"

    async def main() -> None:
        made = [RedisState(REDIS, prefix) if kind == "redis" else MemoryState() for kind in states]
        for state in made:
            await state.start()
        try:
            await scenario(*made)
        finally:
            for state in made:
                await state.close()
            client = aioredis.Redis.from_url(REDIS)
            keys = [key async for key in client.scan_iter(f"{prefix}*")]
            if keys:
                await client.delete(*keys)
            await client.close()

    asyncio.run(main())


async def _keys_and_ttls(state: RedisState) -> dict[str, int]:
    client = aioredis.Redis.from_url(REDIS, decode_responses=True)
    try:
        return {key: await client.ttl(key) async for key in client.scan_iter(f"{state.prefix}*")}
    finally:
        await client.close()


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_both_modes_keep_the_same_limits_buttons_and_deliveries(kind):
    async def scenario(state: GatewayState) -> None:
        assert [await state.allow("conversation", "a", 60, 3) for _ in range(4)] == [
            True,
            True,
            True,
            False,
        ]
        assert await state.allow("conversation", "b", 60, 3)  # another sender is not affected
        assert await state.allow("address", "a", 60, 3)  # nor another kind of bucket
        assert [await state.count_turn("a", 2, 3600) for _ in range(3)] == [True, True, False]
        await state.reset_turns("a")  # « Recommencer »
        assert await state.count_turn("a", 2, 3600)
        await state.offer_buttons("a", [f"/b{i}" for i in range(MAX_PAYLOADS_PER_SENDER + 1)], 60)
        assert await state.was_offered("a", f"/b{MAX_PAYLOADS_PER_SENDER}")
        assert not await state.was_offered("a", "/b0")  # the oldest is forgotten past the bound
        assert not await state.was_offered("b", "/b1")  # offered to "a" only
        await state.forget_buttons("a")
        assert not await state.was_offered("a", "/b1")
        assert await state.first_delivery("slack-event", "Ev1", 60)
        assert not await state.first_delivery("slack-event", "Ev1", 60)
        assert await state.first_delivery("telegram-update", "Ev1", 60)  # another kind
        await state.remember("revoked-session", "cookie", "", 60)
        assert await state.recall("revoked-session", "cookie", 60) == ""
        assert await state.recall("revoked-session", "other", 60) is None

    run(scenario, kind)


def test_every_key_redis_holds_for_the_gateway_expires():
    async def scenario(state: RedisState) -> None:
        await state.allow("conversation", "web-1", 30, 10)
        await state.count_turn("web-1", 60, 1800)
        await state.offer_buttons("web-1", ["/affirm", "/deny"], 1800)
        await state.first_delivery("slack-event", "Ev1", 3600)
        await state.remember("telegram-button", "b:1", "1\n/affirm", 7 * 86400)
        async with state.turn("relay:web-1"):
            held = await _keys_and_ttls(state)
        assert len(held) == 7, held  # bucket, count, buttons and their sequence, event, id, lock
        assert all(0 < ttl <= 7 * 86400 for ttl in held.values()), held
        bucket = next(ttl for key, ttl in held.items() if ":bucket:" in key)
        assert bucket <= 21  # refilled to its burst in 20 s: then it is the same as absent
        assert len(await _keys_and_ttls(state)) == 6  # the lock is gone once released
        # Keys are hashed: no cookie, sender or Slack id is readable in Redis.
        assert not any("web-1" in key or "Ev1" in key for key in held)

    run(scenario, "redis")


def test_a_bucket_shared_by_two_gateways_gives_exactly_its_burst_under_concurrent_takes():
    async def scenario(a: RedisState, b: RedisState) -> None:
        takes = [g.allow("address", "10.0.0.1", 1, 50) for _ in range(100) for g in (a, b)]
        granted = await asyncio.gather(*takes)
        assert sum(granted) == 50

    run(scenario, "redis", "redis")


def test_a_turn_limit_and_a_retry_are_counted_once_across_two_gateways():
    async def scenario(a: RedisState, b: RedisState) -> None:
        counted = await asyncio.gather(
            *[g.count_turn("web-x", 30, 600) for _ in range(40) for g in (a, b)]
        )
        assert sum(counted) == 30
        firsts = await asyncio.gather(
            *[g.first_delivery("slack-event", "Ev9", 60) for _ in range(10) for g in (a, b)]
        )
        assert sum(firsts) == 1

    run(scenario, "redis", "redis")


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_console_logins_are_throttled_alike_in_both_modes(kind):
    rules = LoginThrottle(per_login=3, per_address=5, window_seconds=60)

    async def scenario(state: GatewayState) -> None:
        attempts = state.login_attempts(rules)
        assert [await attempts.attempt("alice", "10.0.0.1") for _ in range(3)] == [0, 0, 0]
        wait = await attempts.attempt("Alice ", "10.0.0.1")  # the same login, spelled otherwise
        assert 59 <= wait <= 60
        assert await attempts.slowdown("alice", "10.0.0.1") == pytest.approx(0.3)
        assert await attempts.attempt("alice", "10.0.0.2") == 0  # not locked for everyone
        assert await attempts.attempt("bruno", "10.0.0.1") == 0  # 4th of this address
        await attempts.succeeded("bruno", "10.0.0.1")  # its success does not count
        assert await attempts.attempt("carole", "10.0.0.1") == 0
        assert await attempts.attempt("denis", "10.0.0.1") == 0  # the address's 5th
        assert await attempts.attempt("emile", "10.0.0.1") > 0  # one address, many logins

    run(scenario, kind)


def test_concurrent_logins_through_two_gateways_check_no_more_passwords_than_the_limit():
    rules = LoginThrottle(per_login=5, per_address=100, window_seconds=60)

    async def scenario(a: RedisState, b: RedisState) -> None:
        tries = [
            g.login_attempts(rules).attempt("alice", "10.0.0.9") for _ in range(20) for g in (a, b)
        ]
        waits = await asyncio.gather(*tries)
        assert waits.count(0) == 5

    run(scenario, "redis", "redis")


def test_one_turn_at_a_time_per_conversation_across_two_gateways():
    inside: dict[str, int] = {"relay:web-y": 0, "relay:web-z": 0}
    most: dict[str, int] = {"relay:web-y": 0, "relay:web-z": 0}

    async def one_turn(state: RedisState, key: str) -> None:
        async with state.turn(key):
            inside[key] += 1
            most[key] = max(most[key], inside[key])
            await asyncio.sleep(0.02)
            inside[key] -= 1

    async def scenario(a: RedisState, b: RedisState) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        other = asyncio.create_task(one_turn(a, "relay:web-z"))
        await asyncio.gather(*[one_turn(g, "relay:web-y") for _ in range(10) for g in (a, b)])
        assert loop.time() - started >= 20 * 0.02  # the 20 turns of web-y went one by one
        assert other.done()  # web-z did not wait for them
        assert a.waiting("relay:web-y") == b.waiting("relay:web-y") == 0

    run(scenario, "redis", "redis")
    assert most == {"relay:web-y": 1, "relay:web-z": 1}


def test_an_event_published_by_one_gateway_reaches_the_consoles_of_the_other():
    async def scenario(a: RedisState, b: RedisState) -> None:
        counted: dict[str, list[str]] = {"a": [], "b": []}  # what each gateway's /metrics counts
        a.events.observers.append(lambda event: counted["a"].append(event["type"]))
        b.events.observers.append(lambda event: counted["b"].append(event["type"]))
        async with a.events.subscribe() as console_on_a:
            event = {"type": "turn", "conversation": "web-1", "turn": 7}
            await b.events.publish(event)
            assert await asyncio.wait_for(console_on_a.get(), timeout=5) == event
            await a.events.publish({"type": "taken", "handoff": 1, "conversation": "web-1"})
            assert (await asyncio.wait_for(console_on_a.get(), timeout=5))["type"] == "taken"
            assert console_on_a.empty()  # each event once, even the gateway's own
        assert counted == {"a": ["taken"], "b": ["turn"]}  # counted once, where it happened

    run(scenario, "redis", "redis")


def test_without_redis_the_gateway_refuses_in_french_rather_than_forget_its_limits(
    tmp_path, monkeypatch
):
    dead = f"redis://127.0.0.1:{free_port()}/0"

    async def offline() -> None:
        state = RedisState(dead)
        with pytest.raises(StateUnavailable):
            await state.allow("address", "10.0.0.1", 60, 10)
        with pytest.raises(StateUnavailable):
            async with state.turn("relay:web-1"):
                pass
        await state.close()

    asyncio.run(offline())

    monkeypatch.setenv("GATEWAY_REDIS_URL", dead)
    monkeypatch.setenv("RASA_URL", f"http://127.0.0.1:{free_port()}")

    async def gateway() -> None:
        vault = Vault(create_schema(f"sqlite:///{tmp_path}/vault.db"), Fernet.generate_key())
        async with TestClient(TestServer(create_app(vault=vault))) as client:
            reply = await client.post("/api/chat", json={"message": "bonjour"})
            assert reply.status == 503
            assert (await reply.json())["error"] == UNAVAILABLE

    asyncio.run(gateway())
