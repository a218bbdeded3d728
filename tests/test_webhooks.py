"""What the webhook channels share: the bounded memory of ids and payloads, the body limit
(on a real aiohttp server on loopback), and replies prepared in the background."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.gateway.webhooks import (
    BackgroundReplies,
    BodyTooLarge,
    BoundedDict,
    json_error,
    read_body,
)

LIMIT = 1024
TOO_LARGE = "Message trop volumineux."


def test_a_bounded_dict_keeps_its_capacity_and_forgets_the_oldest_entry_first():
    seen: BoundedDict[int, None] = BoundedDict(3)
    for update_id in (1, 2, 3, 4):
        seen[update_id] = None
    assert list(seen) == [2, 3, 4] and len(seen) == 3
    seen[2] = None  # set again, it keeps its place: first in, first out
    seen[5] = None
    assert list(seen) == [3, 4, 5]
    assert 2 not in seen and seen.popitem() == (3, None)


def test_a_touched_entry_is_the_last_one_forgotten():
    payloads: BoundedDict[str, str] = BoundedDict(3)
    payloads["a"], payloads["b"], payloads["c"] = "/affirm", "/deny", "/cancel"
    payloads.touch("a")  # used: least recently used out
    payloads["d"] = "/greet"
    assert list(payloads.items()) == [("c", "/cancel"), ("a", "/affirm"), ("d", "/greet")]
    assert payloads.pop("c") == "/cancel" and payloads.get("c") is None
    with pytest.raises(KeyError):
        payloads.touch("b")


async def _hook(request: web.Request) -> web.Response:
    try:
        body = await read_body(request, LIMIT)
    except BodyTooLarge:
        return json_error(413, TOO_LARGE)
    return web.json_response({"bytes": len(body)})


async def _chunked(size: int, chunk: int = 100) -> AsyncIterator[bytes]:
    """A body without Content-Length: only reading it shows its size."""
    for start in range(0, size, chunk):
        yield b"x" * min(chunk, size - start)


@pytest.mark.parametrize("announced", [True, False], ids=["content-length", "chunked"])
def test_a_body_at_the_limit_passes_and_one_byte_more_gets_413(announced: bool):
    async def scenario() -> None:
        app = web.Application()
        app.router.add_post("/hook", _hook)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            for size, status in ((LIMIT, 200), (LIMIT + 1, 413), (0, 200)):
                data = b"x" * size if announced else _chunked(size)
                reply = await client.post("/hook", data=data)
                assert reply.status == status, size
                if status == 200:
                    assert await reply.json() == {"bytes": size}
                else:
                    assert await reply.json() == {"error": TOO_LARGE}

    asyncio.run(scenario())


CHANNEL_LOG = logging.getLogger("bot.channels.essai")


def test_a_failed_reply_is_logged_by_its_type_without_the_users_text(caplog):
    caplog.set_level(logging.DEBUG)

    async def failing() -> None:
        await asyncio.sleep(0)
        raise ValueError("mon NUMEN est 01E9501234ABC")

    async def answered(done: list[str]) -> None:
        done.append("ok")

    async def scenario() -> None:
        replies = BackgroundReplies("essai", CHANNEL_LOG)
        done: list[str] = []
        replies.start(failing())
        replies.start(answered(done))
        assert len(replies) == 2  # referenced until they end
        assert await replies.settle(timeout=5)
        assert len(replies) == 0 and done == ["ok"]

    asyncio.run(scenario())
    [record] = [r for r in caplog.records if r.name.startswith("bot.")]
    assert record.name == "bot.channels.essai"  # the channel's own logger
    assert record.levelno == logging.ERROR and record.exc_info is None
    assert record.getMessage() == "essai: answering failed (ValueError)"
    assert "01E9501234ABC" not in caplog.text and "NUMEN" not in caplog.text


def test_at_shutdown_replies_get_a_grace_period_then_are_cancelled(caplog):
    caplog.set_level(logging.WARNING)

    async def scenario() -> None:
        replies = BackgroundReplies("essai")
        finished: list[str] = []

        async def reply(seconds: float) -> None:
            await asyncio.sleep(seconds)
            finished.append(f"{seconds}")

        replies.start(reply(0.01))
        replies.start(reply(60))
        assert not await replies.settle(timeout=0.2)
        await replies.close(grace_seconds=0.2)
        assert finished == ["0.01"] and len(replies) == 0

    asyncio.run(scenario())
    assert "essai: 1 replies cancelled at shutdown" in caplog.text
    assert "answering failed" not in caplog.text  # a cancelled reply is no failure
