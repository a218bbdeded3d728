"""The public web entry point: the chat page and a small chat API relayed to Rasa.

Rasa's REST channel trusts the `sender` field it is given, so it must never face users: this
gateway assigns each browser a random session cookie and derives the Rasa sender id from it,
so a client can only ever write into its own conversation.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import secrets
from collections import OrderedDict, deque
from pathlib import Path

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from bot import config
from bot.gateway.keys import HISTORY, HTTP, RASA, RELAY, VAULT
from bot.gateway.relay import MAX_MESSAGE_CHARS, TOO_LONG, Refused, Relay
from bot.knowledge.store import make_engine
from bot.personal_data.vault import Vault

logger = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
COOKIE = "sid"
MAX_BODY_BYTES = 16 * 1024
HISTORY_PER_SESSION = 200
MAX_SESSIONS = 10_000
RASA_TIMEOUT = ClientTimeout(total=15)


BAD_REQUEST = "Requête illisible : rechargez la page et réessayez."

__all__ = ["MAX_MESSAGE_CHARS", "create_app", "sender_id"]


def sender_id(session_token: str) -> str:
    """The Rasa sender id of a browser session (the cookie itself never leaves the gateway)."""
    return "web-" + hashlib.sha256(session_token.encode()).hexdigest()[:32]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _session(request: web.Request) -> tuple[str, bool]:
    token = request.cookies.get(COOKIE, "")
    if len(token) == 43 and token.replace("-", "").replace("_", "").isalnum():
        return token, False
    return secrets.token_urlsafe(32), True


def _with_cookie(response: web.Response, token: str, new: bool) -> web.Response:
    if new:
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", max_age=86400)
    return response


def _history(app: web.Application, sender: str) -> deque:
    store = app[HISTORY]
    if sender not in store:
        store[sender] = deque(maxlen=HISTORY_PER_SESSION)
        while len(store) > MAX_SESSIONS:
            store.popitem(last=False)
    store.move_to_end(sender)
    return store[sender]


async def index(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html")


async def health(request: web.Request) -> web.Response:
    try:
        async with request.app[HTTP].get(f"{request.app[RASA]}/") as reply:
            rasa_ok = reply.status == 200
    except (ClientError, TimeoutError):
        rasa_ok = False
    return web.json_response({"gateway": "ok", "rasa": "ok" if rasa_ok else "down"})


async def history(request: web.Request) -> web.Response:
    token, new = _session(request)
    messages = list(request.app[HISTORY].get(sender_id(token), ()))
    return _with_cookie(web.json_response({"messages": messages}), token, new)


async def chat(request: web.Request) -> web.Response:
    token, new = _session(request)
    if request.content_length and request.content_length > MAX_BODY_BYTES:
        return _error(413, TOO_LONG)
    try:
        body = json.loads(await request.text())
    except web.HTTPRequestEntityTooLarge:
        return _error(413, TOO_LONG)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _error(400, BAD_REQUEST)
    text = body.get("message") if isinstance(body, dict) else None
    if not isinstance(text, str):
        return _error(400, BAD_REQUEST)
    sender = sender_id(token)
    try:
        exchange = await request.app[RELAY].send(sender, text)
    except Refused as refused:
        return _with_cookie(_error(refused.status, refused.message), token, new)
    log = _history(request.app, sender)
    log.append({"sender": "user", "text": _shown_text(exchange.shown_text, log)})
    log.extend({"sender": "bot", **m} for m in exchange.messages)
    return _with_cookie(web.json_response({"messages": exchange.messages}), token, new)


def _shown_text(text: str, earlier: deque) -> str:
    """A button payload is shown in the history as the button's title, as the page did."""
    if text.startswith("/"):
        for message in reversed(earlier):
            for button in message.get("buttons", ()):
                if button["payload"] == text:
                    return button["title"]
    return text


async def _http_client(app: web.Application):
    async with ClientSession(timeout=RASA_TIMEOUT) as session:
        app[HTTP] = session
        app[RELAY] = Relay(app[RASA], session, app[VAULT])
        yield


def create_app(rasa_url: str | None = None, vault: Vault | None = None) -> web.Application:
    """The gateway application; `rasa_url` defaults to `RASA_URL`, `vault` to our database's."""
    app = web.Application(client_max_size=MAX_BODY_BYTES)
    app[RASA] = (rasa_url or config.rasa_url()).rstrip("/")
    app[VAULT] = vault or Vault.from_env(make_engine())
    app[HISTORY] = OrderedDict()
    app.cleanup_ctx.append(_http_client)
    app.router.add_get("/", index)
    app.router.add_get("/health", health)
    app.router.add_get("/api/history", history)
    app.router.add_post("/api/chat", chat)
    app.router.add_static("/static/", STATIC)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bot.gateway.app")
    parser.add_argument("--host", default=os.environ.get("GATEWAY_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GATEWAY_PORT", "8080")))
    args = parser.parse_args()
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"))
    web.run_app(create_app(), host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
