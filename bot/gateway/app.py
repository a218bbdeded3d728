"""The public web entry point: the chat widget (and a demo page), a small chat API relayed to Rasa.

Rasa's channels trust the `sender` field they are given, so they must never face users: this
gateway assigns each browser a signed random session cookie (`sessions.py`) and derives the
Rasa sender id from it, so a client can only ever write into its own conversation. Limits per
cookie, per client address and for the chores are in `limits.py`. On a shared computer the
widget's « Effacer la conversation » ends the conversation (`POST /api/forget`).

The widget (`static/widget.js`) can be embedded on the sites listed in `GATEWAY_ALLOWED_ORIGINS`:
the chat API answers them with CORS headers (with credentials), and the session cookie is then
`SameSite=None; Secure; Partitioned` over https (one conversation per embedding site), while it
stays `SameSite=Strict` for the gateway's own page.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import ClientError, ClientSession, ClientTimeout, web
from sqlalchemy.exc import SQLAlchemyError

from bot import config
from bot.db import make_engine
from bot.gateway.console import setup_console
from bot.gateway.health import setup_health
from bot.gateway.keys import DESK, HTTP, LIMITS, RASA, RELAY, VAULT
from bot.gateway.limits import AddressLimits, GatewayLimits
from bot.gateway.metrics import MeteredAddressLimits, MeteredRelay, setup_metrics
from bot.gateway.relay import (
    MAX_MESSAGE_CHARS,
    TOO_FAST,
    TOO_LONG,
    UNAVAILABLE,
    Refused,
)
from bot.gateway.security import setup_security
from bot.gateway.sessions import SessionTokens, session_key
from bot.gateway.state import STATE, gateway_state, state_lifetime, state_unavailable
from bot.gateway.webhooks import json_error
from bot.knowledge import Knowledge
from bot.personal_data.vault import Vault
from bot.support.desk import SupportDesk
from bot.support.models import utcnow
from bot.support.store import SupportStore, TurnView

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
COOKIE = "sid"
COOKIE_MAX_AGE = 86400
CROSS_ORIGIN_PATHS = ("/api/", "/health")
ALLOWED_ORIGINS = web.AppKey("allowed_origins", frozenset)
REPLICAS = web.AppKey("rasa_replicas", list)
ADDRESSES = web.AppKey("address_limits", AddressLimits)
SESSIONS = web.AppKey("sessions", SessionTokens)
MAX_BODY_BYTES = 16 * 1024
RASA_TIMEOUT = ClientTimeout(total=15)


BAD_REQUEST = "Requête illisible : rechargez la page et réessayez."
NEW_CONVERSATIONS_TOO_FAST = (
    "Trop de nouvelles conversations ont été ouvertes depuis votre connexion : patientez une "
    "minute, puis réessayez."
)
FOREIGN_SITE = (
    "Ce site n'est pas autorisé à utiliser l'assistant : utilisez la page officielle des "
    "élections professionnelles."
)

__all__ = ["MAX_MESSAGE_CHARS", "create_app", "sender_id"]


def sender_id(session_token: str) -> str:
    """The Rasa sender id of a browser session (the cookie itself never leaves the gateway)."""
    return "web-" + hashlib.sha256(session_token.encode()).hexdigest()[:32]


def allowed_origins(value: str | None = None) -> frozenset[str]:
    """Sites that may embed the widget from another origin (`GATEWAY_ALLOWED_ORIGINS`,
    comma-separated, e.g. `https://www.ac-lyon.fr,https://intranet.example`; default none)."""
    raw = os.environ.get("GATEWAY_ALLOWED_ORIGINS", "") if value is None else value
    origins = set()
    for item in filter(None, (part.strip().rstrip("/").lower() for part in raw.split(","))):
        parts = urlsplit(item)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
            raise ValueError(
                f"GATEWAY_ALLOWED_ORIGINS : origine invalide « {item} » "
                "(attendu : schéma et hôte, par exemple https://www.ac-lyon.fr)"
            )
        origins.add(item)
    return frozenset(origins)


def _foreign_origin(request: web.Request) -> str | None:
    """The `Origin` of a cross-origin browser request; None when same-origin or not a browser."""
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    own_hosts = {request.host, request.headers.get("X-Forwarded-Host")}  # behind a proxy too
    return None if urlsplit(origin).netloc in own_hosts else origin.lower()


def _is_https(request: web.Request) -> bool:
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip()
    return request.secure or forwarded == "https"


@web.middleware
async def cross_origin(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """CORS for the chat API and health, for the allowed sites only; a write from any other
    site is refused, since the session cookie may be sent cross-site."""
    if not request.path.startswith(CROSS_ORIGIN_PATHS):
        return await handler(request)
    origin = _foreign_origin(request)
    allowed = origin is not None and origin in request.app[ALLOWED_ORIGINS]
    if request.method == "OPTIONS":
        response: web.StreamResponse = web.Response(status=204 if allowed else 403)
        if allowed:
            response.headers["Access-Control-Allow-Methods"] = "GET, POST"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type, Accept"
            response.headers["Access-Control-Max-Age"] = "600"
    elif origin is not None and not allowed and request.method == "POST":
        logger.info("refused a chat message from a site not allowed to embed the widget")
        response = json_error(403, FOREIGN_SITE)
    else:
        response = await handler(request)
    if allowed:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
    response.headers.add("Vary", "Origin")
    return response


@web.middleware
async def no_store(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """The chat API's answers hold a conversation: no cache may keep them (shared computers)."""
    response = await handler(request)
    if request.path.startswith("/api/"):
        response.headers["Cache-Control"] = "no-store"
    return response


async def _session(request: web.Request) -> tuple[str, bool]:
    """The request's cookie when this gateway issued it; otherwise a new one (True)."""
    token = request.cookies.get(COOKIE, "")
    if await request.app[SESSIONS].valid(token):
        return token, False
    return request.app[SESSIONS].issue(), True


async def _with_cookie(
    request: web.Request, response: web.Response, token: str, new: bool
) -> web.Response:
    """Set a new cookie on `response`; issuing one counts against the client's address (a
    client that drops its cookie at each message starts a conversation each time)."""
    if not new:
        return response
    address = request.app[LIMITS].address_of(request)
    if not await request.app[ADDRESSES].allow_new_conversation(address):
        return response  # the next message will be refused by the same limit
    _set_cookie(request, response, token, COOKIE_MAX_AGE)
    return response


def _set_cookie(request: web.Request, response: web.Response, token: str, max_age: int) -> None:
    """`max_age` 0 deletes the browser's cookie (same attributes, or the browser keeps it)."""
    https = _is_https(request)
    if https and _foreign_origin(request) in request.app[ALLOWED_ORIGINS]:
        # Embedded on an allowed site: the cookie must travel cross-site. `Partitioned` (CHIPS)
        # keeps it working where third-party cookies are blocked; aiohttp cannot write it.
        response.headers.add(
            "Set-Cookie",
            f"{COOKIE}={token}; Max-Age={max_age}; Path=/; HttpOnly; Secure; "
            "SameSite=None; Partitioned",
        )
    else:
        response.set_cookie(
            COOKIE, token, httponly=True, samesite="Strict", secure=https or None,
            max_age=max_age,
        )  # fmt: skip


async def index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html")


async def health(request: web.Request) -> web.Response:
    try:
        async with request.app[HTTP].get(f"{request.app[RASA]}/") as reply:
            rasa_ok = reply.status == 200
    except (ClientError, asyncio.TimeoutError):
        rasa_ok = False
    return web.json_response({"gateway": "ok", "rasa": "ok" if rasa_ok else "down"})


async def history(request: web.Request) -> web.Response:
    """The conversation so far (`?after=<id>`: only the turns after that one, e.g. an agent's
    replies while a handoff is open), with its state and the id of its last turn."""
    token, new = await _session(request)
    after = request.query.get("after", "0")
    if not (after.isascii() and after.isdigit()) or len(after) > 12:
        return await _with_cookie(request, json_error(400, BAD_REQUEST), token, new)
    sender = sender_id(token)
    desk = request.app[RELAY].desk
    try:
        turns = [] if new else await desk.history(sender, int(after))
        state = await desk.state(sender)
    except SQLAlchemyError:
        logger.exception("could not read a conversation's history")
        return await _with_cookie(request, json_error(503, UNAVAILABLE), token, new)
    last = turns[-1].id if turns else int(after)
    if after == "0":
        turns = current_session(turns, timedelta(minutes=config.session_expiration_minutes()))
    body = {
        "messages": [_shown(t.as_message(), turns) for t in turns],
        "state": state,
        "last": last,
    }
    return await _with_cookie(request, web.json_response(body), token, new)


def current_session(turns: list[TurnView], idle: timedelta, now=None) -> list[TurnView]:
    """The turns of the conversation's current session: none once it has been idle longer than
    `idle` (Rasa's session expiry), and only those after its last such pause (on a shared
    computer, the next person must not see the previous one's conversation)."""
    now = now or utcnow()
    if not turns or now - turns[-1].at > idle:
        return []
    start = 0
    for i in range(1, len(turns)):
        if turns[i].at - turns[i - 1].at > idle:
            start = i
    return turns[start:]


async def forget(request: web.Request) -> web.Response:
    """« Effacer la conversation »: end it (vault values, handoff, Rasa session), revoke the
    cookie and delete the browser's copy; the next message starts a new conversation."""
    token = request.cookies.get(COOKIE, "")
    if await request.app[SESSIONS].valid(token):
        try:
            await request.app[RELAY].end(sender_id(token))
        except Refused as refused:
            return json_error(refused.status, refused.message)
        await request.app[SESSIONS].revoke(token)
    response = web.json_response({"ok": True})
    _set_cookie(request, response, "", 0)
    return response


async def chat(request: web.Request) -> web.Response:
    token, new = await _session(request)
    address = request.app[LIMITS].address_of(request)
    if new and not await request.app[ADDRESSES].allow_new_conversation(address):
        logger.info("new conversations throttled for one address")
        return json_error(429, NEW_CONVERSATIONS_TOO_FAST)
    if not await request.app[ADDRESSES].allow_message(address):
        logger.info("messages throttled for one address")
        return json_error(429, TOO_FAST)
    if request.content_length and request.content_length > MAX_BODY_BYTES:
        return json_error(413, TOO_LONG)
    try:
        body = json.loads(await request.text())
    except web.HTTPRequestEntityTooLarge:
        return json_error(413, TOO_LONG)
    except (ValueError, RecursionError):  # bad JSON or UTF-8, a too long number, too deep
        return json_error(400, BAD_REQUEST)
    text = body.get("message") if isinstance(body, dict) else None
    if not isinstance(text, str):
        return json_error(400, BAD_REQUEST)
    sender = sender_id(token)
    try:
        exchange = await request.app[RELAY].send(sender, text, client=address)
    except Refused as refused:
        return _set_new_cookie(request, json_error(refused.status, refused.message), token, new)
    body = {"messages": exchange.messages, "state": exchange.state, "last": exchange.last_turn}
    return _set_new_cookie(request, web.json_response(body), token, new)


def _set_new_cookie(request: web.Request, response: web.Response, token: str, new: bool):
    """The chat's new cookie, already counted against the address."""
    if new:
        _set_cookie(request, response, token, COOKIE_MAX_AGE)
    return response


def _shown(message: dict, turns: list) -> dict:
    """A button payload is shown in the history as the button's title, as the page did."""
    text = message.get("text", "")
    if message.get("sender") == "user" and text.startswith("/"):
        for turn in reversed(turns):
            for button in turn.buttons:
                if button["payload"] == text:
                    return {**message, "text": button["title"]}
    return message


async def _http_client(app: web.Application):
    async with ClientSession(timeout=RASA_TIMEOUT) as session:
        app[HTTP] = session
        app[RELAY] = MeteredRelay(
            app[REPLICAS], session, app[VAULT], app[DESK], limits=app[LIMITS], state=app[STATE]
        )
        yield


def create_app(
    rasa_url: str | None = None, vault: Vault | None = None, desk: SupportDesk | None = None
) -> web.Application:
    """The gateway application; `rasa_url` defaults to the replicas of `RASA_URLS` (or the one
    `RASA_URL`), `vault` and `desk` to our database's (`BOT_DATABASE_URL`)."""
    middlewares = [cross_origin, no_store, state_unavailable]
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=middlewares)
    app[ALLOWED_ORIGINS] = allowed_origins()
    app[LIMITS] = GatewayLimits.from_env()
    app[STATE] = gateway_state()  # in memory, or in Redis shared by several gateways
    app[ADDRESSES] = MeteredAddressLimits(app[LIMITS], app[STATE])
    app[SESSIONS] = SessionTokens(session_key(), COOKIE_MAX_AGE, app[STATE])
    # Conversations go each to its own replica; health and the copilot's parse use the first.
    app[REPLICAS] = [rasa_url.rstrip("/")] if rasa_url else config.rasa_urls()
    app[RASA] = app[REPLICAS][0]
    engine = vault.engine if vault else make_engine()  # the tests' vault: their database
    app[VAULT] = vault or Vault.from_env(engine)
    app[DESK] = desk or SupportDesk(SupportStore(engine), Knowledge(engine), app[STATE].events)
    app.cleanup_ctx.append(state_lifetime)
    app.cleanup_ctx.append(_http_client)
    app.router.add_get("/", index)
    app.router.add_get("/health", health)  # the widget's; the probes: bot/gateway/health.py
    setup_health(app)
    setup_metrics(app)
    app.router.add_get("/api/history", history)
    app.router.add_post("/api/chat", chat)
    app.router.add_post("/api/forget", forget)
    app.router.add_static("/static/", STATIC)
    setup_console(app)
    setup_security(app)  # headers on every response; a French 500 as a last resort
    return app
