"""Probes for a load balancer or a supervisor.

- `GET /health/live`: the gateway process answers (restart it when this fails).
- `GET /health/ready`: every part a conversation needs answers: each Rasa replica
  (`RASA_URLS`, the relay's), each action server (`ACTION_SERVER_URLS`), our database
  (`BOT_DATABASE_URL`) and, when `REDIS_URL` is set (production mode), Redis. 200 when all
  do; otherwise 503 with the failing parts named (`"failing": ["rasa-1"]`) and, for each
  part, « ok » or what went wrong.
  Every check runs at once and gives up after `READY_TIMEOUT_SECONDS`, so a replica that hangs
  costs the probe two seconds, not the 15 s the chat allows.
- `GET /health` (in `app.py`) is unchanged: the widget polls it to learn that the gateway is
  reachable again, and must not stay offline because one replica of several is down.

Bodies name parts (`rasa-0`, `actions-0`, `database`, `redis`), never an address or a URL.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

import redis.asyncio as aioredis
from aiohttp import ClientError, ClientTimeout, web
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from bot import config
from bot.gateway.keys import HTTP, RELAY, VAULT

READY_TIMEOUT_SECONDS = 2.0
OK = "ok"
TIMED_OUT = f"pas de réponse en {READY_TIMEOUT_SECONDS:g} s"
UNREACHABLE = "injoignable"

ACTION_SERVERS = web.AppKey("action_server_urls", list)
REDIS_URL = web.AppKey("ready_redis_url", str)


async def live(request: web.Request) -> web.Response:
    return web.json_response({"live": True})


async def ready(request: web.Request) -> web.Response:
    app = request.app
    checks: dict[str, Awaitable[str]] = {}
    for i, url in enumerate(app[RELAY].replicas):
        checks[f"rasa-{i}"] = _http(app, f"{url}/")
    for i, url in enumerate(app[ACTION_SERVERS]):
        checks[f"actions-{i}"] = _http(app, f"{url}/health")
    checks["database"] = _database(app[VAULT].engine)
    if app[REDIS_URL]:
        checks["redis"] = _redis(app[REDIS_URL])
    results = await asyncio.gather(*(_bounded(check) for check in checks.values()))
    parts = dict(zip(checks, results, strict=True))
    failing = [name for name, state in parts.items() if state != OK]
    body = {"ready": not failing, "failing": failing, "parts": parts}
    return web.json_response(body, status=503 if failing else 200)


async def _bounded(check: Awaitable[str]) -> str:
    try:
        return await asyncio.wait_for(check, READY_TIMEOUT_SECONDS)
    except asyncio.TimeoutError:
        return TIMED_OUT


async def _http(app: web.Application, url: str) -> str:
    try:
        async with app[HTTP].get(url, timeout=ClientTimeout(total=READY_TIMEOUT_SECONDS)) as reply:
            return OK if reply.status == 200 else f"a répondu HTTP {reply.status}"
    except asyncio.TimeoutError:
        return TIMED_OUT
    except ClientError:
        return UNREACHABLE


async def _database(engine: Engine) -> str:
    def select_one() -> None:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    try:
        await asyncio.to_thread(select_one)
    except SQLAlchemyError:
        return UNREACHABLE
    return OK


async def _redis(url: str) -> str:
    client = aioredis.from_url(
        url, socket_timeout=READY_TIMEOUT_SECONDS, socket_connect_timeout=READY_TIMEOUT_SECONDS
    )
    try:
        await client.ping()
    except (RedisError, OSError):
        return UNREACHABLE
    finally:
        await client.close(close_connection_pool=True)
    return OK


def setup_health(app: web.Application) -> None:
    """The two probes, over the action servers and the Redis of the environment."""
    app[ACTION_SERVERS] = config.action_server_urls()
    app[REDIS_URL] = config.redis_url() or ""
    app.router.add_get("/health/live", live)
    app.router.add_get("/health/ready", ready)
