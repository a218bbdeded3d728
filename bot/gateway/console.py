"""The support agents' console, served by the gateway under /console/: one French page
(`console_static/console.html`, `console.js`, `console.css`) and its JSON API.

Agents (`agent` role) see the queue and answer users; analysts (`analyst`) only read the
statistics. Everything is shown in French: intents by their French names
(`bot.knowledge.topics.topic_names`), dates and times as « 8 novembre 2026 » and « 14 h 05 »
in the knowledge base's time zone, and the assistant's Markdown as paragraphs, lists, bold and
links (`bot.gateway.rich_text`: JSON the page builds with the DOM, never HTML); users' texts
stay plain text. Every agent action goes to the audit trail, never with a message's text. Handlers
translate HTTP into calls of `SupportDesk`, `Accounts`, the copilot and the insights.

Its own security, on its paths only: a session cookie (`console_sid`, HttpOnly,
SameSite=Strict, only its SHA-256 stored), a CSRF token per session required on every POST but
the login, a same-origin check of `Origin`, a strict Content Security Policy and no CORS at all.
Its routes are on the gateway's router, not in a sub-application: aiohttp 3.9's sub-applications
read `request.url`, which the locked yarl cannot build for a Host header with a port.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.engine import Engine
from sqlalchemy.exc import NoResultFound, SQLAlchemyError

from bot.gateway import rich_text
from bot.gateway.keys import DESK, HTTP, LIMITS, RASA
from bot.gateway.relay import MAX_MESSAGE_CHARS, clean_message
from bot.gateway.state import STATE, LoginAttempts
from bot.gateway.webhooks import json_error
from bot.knowledge import Knowledge
from bot.knowledge.french import clock_time, french_date
from bot.knowledge.topics import topic_names
from bot.support import insights as support_insights
from bot.support.accounts import (
    AGENT,
    ANALYST,
    SESSION_TTL,
    Accounts,
    ConsoleSession,
    LoginThrottle,
)
from bot.support.copilot import Copilot, rasa_parser
from bot.support.models import USER, utcnow
from bot.support.store import HandoffConflict, HandoffView, TurnView

logger = logging.getLogger(__name__)

PREFIX = "/console"
STATIC = (
    Path(__file__).parent / "console_static"
)  # not under /static/: served with the console headers
COOKIE = "console_sid"
CSRF_HEADER = "X-CSRF-Token"
# Comments on the event stream this often; each also counts the agent as online.
HEARTBEAT_SECONDS = 15.0
RECONNECT_MS = 3000
PREVIEW_CHARS = 200
DEFAULT_TIMEZONE = "Europe/Paris"  # when the knowledge base is not loaded: its own zone
MAX_INSIGHTS_DAYS = 366
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

ACCOUNTS = web.AppKey("console_accounts", Accounts)
THROTTLE = web.AppKey("console_throttle", LoginAttempts)  # shared by the gateways
CLOSING = web.AppKey("console_closing", asyncio.Event)  # set when the gateway stops

NOT_LOGGED_IN = "Vous n'êtes pas connecté(e) : identifiez-vous pour accéder à la console."
BAD_CREDENTIALS = "Identifiant ou mot de passe incorrect."
MISSING_CREDENTIALS = "Saisissez votre identifiant et votre mot de passe."
TOO_MANY_ATTEMPTS = (
    "Trop de tentatives de connexion : réessayez dans {minutes} minute(s), ou demandez à "
    "l'administrateur de vérifier votre compte."
)
BAD_CSRF = "Jeton de sécurité absent ou périmé : rechargez la page de la console."
FOREIGN_ORIGIN = "Cette requête ne vient pas de la console : elle est refusée."
AGENTS_ONLY = (
    "Votre compte est un compte d'analyste : il donne accès aux statistiques, pas aux "
    "conversations."
)
BAD_REQUEST = "Requête illisible : rechargez la page et réessayez."
NO_CONVERSATION = "Conversation introuvable : elle a peut-être été supprimée."
NO_HANDOFF = "Demande introuvable : rechargez la file d'attente."
NO_TURN = "Message introuvable dans cette conversation."
ALREADY_TAKEN = "{name} a déjà pris cette conversation."
ALREADY_CLOSED = "Cette demande est close : l'usager est revenu à l'assistant."
TAKE_FIRST = "Prenez d'abord la main sur cette conversation (bouton « Prendre la main »)."
NOT_WAITING = "Cette conversation n'attend plus de conseiller : elle est revenue à l'assistant."
EMPTY_REPLY = "Votre réponse est vide : écrivez un message avant de l'envoyer."
REPLY_TOO_LONG = f"Réponse trop longue ({MAX_MESSAGE_CHARS} caractères au plus) : raccourcissez-la."
UNAVAILABLE = "La base de données de l'assistance ne répond pas : réessayez dans un instant."
BAD_DAYS = f"Période invalide : un nombre de jours entre 1 et {MAX_INSIGHTS_DAYS}."


class ConsoleError(Exception):
    """A refused request: HTTP `status` and a French sentence for the agent."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def setup_console(app: web.Application) -> None:
    """Add the console's page and API to the gateway, under /console/."""
    app[ACCOUNTS] = Accounts(app[DESK].store.engine)
    app[THROTTLE] = app[STATE].login_attempts(LoginThrottle())
    app[CLOSING] = asyncio.Event()
    app[COPILOT] = Copilots()
    app.on_response_prepare.append(_security_headers)
    app.on_shutdown.append(_close_streams)
    app.router.add_get(PREFIX, _to_the_page)
    routes = [
        ("GET", "/", page),
        ("GET", "/console.js", asset),
        ("GET", "/console.css", asset),
        ("POST", "/api/login", login),
        ("POST", "/api/logout", logout),
        ("GET", "/api/me", me),
        ("GET", "/api/queue", queue),
        ("GET", "/api/events", events),
        ("GET", "/api/conversations/{conversation}", conversation),
        ("POST", "/api/conversations/{conversation}/reply", reply),
        ("POST", "/api/handoffs/{handoff:\\d{1,12}}/take", take),
        ("POST", "/api/handoffs/{handoff:\\d{1,12}}/release", release),
        # The copilot (bot/support/copilot.py) and the statistics (bot/support/insights.py).
        ("POST", "/api/suggest", suggest),
        ("GET", "/api/insights", insights),
        ("GET", "/api/insights/candidates.yml", insights_candidates),
        ("GET", "/api/insights/{kind:daily|topics}.png", insights_plot),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, PREFIX + path, _guarded(handler))


async def _to_the_page(request: web.Request) -> web.Response:
    raise web.HTTPFound(f"{PREFIX}/")


# ---------------------------------------------------------------------- request plumbing

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _guarded(handler: Handler) -> Handler:
    """A console handler: a write from another origin is refused (the CSRF token is the other
    guard), and refusals and database failures become French JSON errors."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD") and not _same_origin(request):
            logger.info("refused a console request from another origin")
            return json_error(403, FOREIGN_ORIGIN)
        try:
            return await handler(request)
        except ConsoleError as error:
            return json_error(error.status, error.message)
        except SQLAlchemyError:
            logger.exception("support database error in the console")
            return json_error(503, UNAVAILABLE)

    return guarded


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    if origin is None:
        return True  # not a cross-site browser request (browsers send Origin on those)
    own_hosts = {request.host, request.headers.get("X-Forwarded-Host")}  # behind a proxy too
    return urlsplit(origin).netloc in own_hosts - {None}


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    if request.path != PREFIX and not request.path.startswith(f"{PREFIX}/"):
        return
    response.headers.update(SECURITY_HEADERS)
    if request.path.startswith(f"{PREFIX}/api/"):
        response.headers["Cache-Control"] = "no-store"


def _is_https(request: web.Request) -> bool:
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip()
    return request.secure or forwarded == "https"


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.text())
    except web.HTTPRequestEntityTooLarge:
        raise ConsoleError(413, REPLY_TOO_LONG) from None
    except (ValueError, RecursionError):  # bad JSON or UTF-8, a too long number, too deep
        raise ConsoleError(400, BAD_REQUEST) from None
    if not isinstance(body, dict):
        raise ConsoleError(400, BAD_REQUEST)
    return body


async def _signed_in(
    request: web.Request, roles: tuple[str, ...] = (AGENT,), write: bool = False
) -> ConsoleSession:
    """The request's session: 401 without one; 403 for a write without its CSRF token, or for
    a role not in `roles`. Refreshes the agent's `last_seen_at`."""
    token = request.cookies.get(COOKIE, "")
    session = await asyncio.to_thread(request.app[ACCOUNTS].session_for, token) if token else None
    if session is None:
        raise ConsoleError(401, NOT_LOGGED_IN)
    if write:
        given = request.headers.get(CSRF_HEADER, "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, session.csrf_token.encode()):
            raise ConsoleError(403, BAD_CSRF)
    if session.agent.role not in roles:
        raise ConsoleError(403, AGENTS_ONLY)
    return session


async def _audit(
    request: web.Request,
    agent_id: int | None,
    action: str,
    conversation_id: str | None = None,
    **detail: Any,
) -> None:
    await asyncio.to_thread(
        request.app[ACCOUNTS].audit, agent_id, action, conversation_id, detail or None
    )


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.replace(microsecond=0).isoformat() + "Z"


def _conversation_id(request: web.Request) -> str:
    value = request.match_info["conversation"]
    if not 1 <= len(value) <= 96 or not all(c.isalnum() or c in "-_.:" for c in value):
        raise ConsoleError(404, NO_CONVERSATION)
    return value


@dataclass(frozen=True)
class Reading:
    """How the console shows what it stores: intents by their French names, UTC instants as
    dates and times in the knowledge base's time zone."""

    names: dict[str, str]
    zone: ZoneInfo

    def topic(self, intent: str | None) -> str | None:
        return None if intent is None else self.names.get(intent, intent)

    def local(self, moment: datetime) -> datetime:
        return moment.replace(tzinfo=timezone.utc).astimezone(self.zone)  # stored naive, in UTC

    def day(self, moment: datetime) -> str:
        return french_date(self.local(moment), with_time=False)

    def time(self, moment: datetime) -> str:
        return clock_time(self.local(moment))


def reading_of(engine: Engine) -> Reading:
    """The knowledge base's answer titles and time zone (blocking: call it in a thread)."""
    knowledge = Knowledge(engine)
    try:
        zone = knowledge.timezone
    except NoResultFound:  # no knowledge base loaded in this database
        zone = DEFAULT_TIMEZONE
    return Reading(topic_names(knowledge.answer_titles()), ZoneInfo(zone))


async def _reading(request: web.Request) -> Reading:
    return await asyncio.to_thread(reading_of, request.config_dict[DESK].store.engine)


def handoff_json(handoff: HandoffView, me: int, now: datetime, reading: Reading) -> dict[str, Any]:
    return {
        "id": handoff.id,
        "conversation": handoff.conversation_id,
        "reason": handoff.reason,
        "channel": handoff.channel,
        "state": handoff.state,
        "created_at": _iso(handoff.created_at),
        "age_seconds": max(0, int((now - handoff.created_at).total_seconds())),
        "taken_at": _iso(handoff.taken_at),
        "taken_by": handoff.taken_by,
        "taken_by_name": handoff.taken_by_name,
        "mine": handoff.taken_by == me,
        "last_user_text": handoff.last_user_text[:PREVIEW_CHARS],
        "last_intent": handoff.last_intent,
        "last_topic": reading.topic(handoff.last_intent),
        "turns": handoff.turns,
    }


def turn_json(turn: TurnView, reading: Reading) -> dict[str, Any]:
    """A turn; a user's text is shown as typed, the others' (the assistant's Markdown, an
    agent's reply, the desk's notices) also as `blocks` (`bot.gateway.rich_text`)."""
    shown: dict[str, Any] = {
        "id": turn.id,
        "at": _iso(turn.at),
        "day": reading.day(turn.at),
        "time": reading.time(turn.at),
        "role": turn.role,
        "text": turn.text,
    }
    if turn.role == USER:  # what the assistant understood of it
        shown["intent"] = turn.intent
        shown["topic"] = reading.topic(turn.intent)
        shown["confidence"] = turn.confidence
    else:
        shown["blocks"] = rich_text.blocks(turn.text)
    if turn.buttons:
        shown["buttons"] = [button["title"] for button in turn.buttons]
    if turn.agent:
        shown["agent"] = turn.agent
    return shown


# ---------------------------------------------------------------------- the page


async def page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "console.html")


async def asset(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / request.path.rsplit("/", 1)[-1])


# ---------------------------------------------------------------------- signing in and out


async def login(request: web.Request) -> web.Response:
    body = await _body(request)
    name, password = body.get("login"), body.get("password")
    if not isinstance(name, str) or not isinstance(password, str) or not name or not password:
        raise ConsoleError(400, MISSING_CREDENTIALS)
    if len(name) > 128 or len(password) > 1024:
        raise ConsoleError(401, BAD_CREDENTIALS)
    address = request.app[LIMITS].address_of(request)
    throttle, accounts = request.app[THROTTLE], request.app[ACCOUNTS]
    wait = await throttle.attempt(name, address)  # counted before the check: no race past it
    if wait:
        logger.warning("console login attempts throttled")
        minutes = max(1, round(wait / 60))
        raise ConsoleError(429, TOO_MANY_ATTEMPTS.format(minutes=minutes))
    outcome = await asyncio.to_thread(accounts.authenticate, name, password)
    if outcome.agent is None:
        # The login typed is kept only when it is an account's (a password typed in the login
        # field by mistake never reaches the audit trail).
        await _audit(request, outcome.agent_id, "login_failed", reason=outcome.refused)
        await asyncio.sleep(await throttle.slowdown(name, address))
        raise ConsoleError(401, BAD_CREDENTIALS)
    await throttle.succeeded(name, address)
    previous = request.cookies.get(COOKIE)
    if previous:
        await asyncio.to_thread(accounts.end_session, previous)
    token, session = await asyncio.to_thread(accounts.open_session, outcome.agent.id)
    await _audit(request, session.agent.id, "login")
    response = web.json_response(_session_json(session))
    response.set_cookie(
        COOKIE, token, path=f"{PREFIX}/", httponly=True, samesite="Strict",
        secure=_is_https(request) or None, max_age=int(SESSION_TTL.total_seconds()),
    )  # fmt: skip
    return response


async def logout(request: web.Request) -> web.Response:
    session = await _signed_in(request, (AGENT, ANALYST), write=True)
    await asyncio.to_thread(request.app[ACCOUNTS].end_session, request.cookies[COOKIE])
    await _audit(request, session.agent.id, "logout")
    response = web.json_response({"ok": True})
    response.del_cookie(COOKIE, path=f"{PREFIX}/")
    return response


async def me(request: web.Request) -> web.Response:
    session = await _signed_in(request, (AGENT, ANALYST))
    return web.json_response(_session_json(session))


def _session_json(session: ConsoleSession) -> dict[str, Any]:
    """Who is signed in, and the CSRF token the page sends back on every write."""
    return {
        "agent": session.agent.as_json(),
        "csrf": session.csrf_token,
        "expires_at": _iso(session.expires_at),
        "max_reply_chars": MAX_MESSAGE_CHARS,
    }


# ---------------------------------------------------------------------- the queue, live


async def queue(request: web.Request) -> web.Response:
    session = await _signed_in(request)
    desk = request.config_dict[DESK]
    handoffs = await asyncio.to_thread(desk.store.queue)
    online = await desk.agents_online()
    reading = await _reading(request)
    now = utcnow()
    # Waiting first (oldest first), then the conversations agents are answering.
    handoffs.sort(key=lambda h: (h.state != "waiting", h.created_at))
    return web.json_response(
        {
            "handoffs": [handoff_json(h, session.agent.id, now, reading) for h in handoffs],
            "agents_online": online,
        }
    )


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events: the desk's events (ids only, no text) as they happen, and a
    comment every HEARTBEAT_SECONDS, which also keeps the agent counted as online and ends the
    stream once the session is over."""
    await _signed_in(request)
    token = request.cookies[COOKIE]
    accounts, closing = request.app[ACCOUNTS], request.app[CLOSING]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    try:
        async with request.config_dict[DESK].events.subscribe() as events:
            await response.write(f"retry: {RECONNECT_MS}\n\n".encode())
            while not closing.is_set():
                event = await _next_event(events, closing, HEARTBEAT_SECONDS)
                if event is not None:
                    await response.write(f"data: {json.dumps(event)}\n\n".encode())
                elif closing.is_set():
                    break
                elif await asyncio.to_thread(accounts.session_for, token) is None:
                    await response.write(b"event: logout\ndata: {}\n\n")
                    break
                else:
                    await response.write(b": ping\n\n")
    except ConnectionResetError:
        pass  # the console was closed
    return response


async def _next_event(
    events: asyncio.Queue, closing: asyncio.Event, timeout: float
) -> dict[str, Any] | None:
    """The next desk event; None after `timeout` seconds or when the gateway stops."""
    getter = asyncio.ensure_future(events.get())
    closer = asyncio.ensure_future(closing.wait())
    try:
        await asyncio.wait({getter, closer}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        closer.cancel()
        if not getter.done():
            getter.cancel()
    return getter.result() if getter.done() and not getter.cancelled() else None


async def _close_streams(console: web.Application) -> None:
    console[CLOSING].set()


# ---------------------------------------------------------------------- a conversation


async def conversation(request: web.Request) -> web.Response:
    """The transcript (`?after=<turn id>`: only the newer turns), with the NLU's topic and
    confidence of each user turn, and the conversation's open handoff."""
    session = await _signed_in(request)
    conversation_id = _conversation_id(request)
    after = request.query.get("after", "0")
    if not (after.isascii() and after.isdigit()) or len(after) > 12:
        raise ConsoleError(400, BAD_REQUEST)
    store = request.config_dict[DESK].store
    found = await asyncio.to_thread(store.conversation, conversation_id)
    if found is None:
        raise ConsoleError(404, NO_CONVERSATION)
    turns = await asyncio.to_thread(store.transcript, conversation_id, int(after))
    handoff = await asyncio.to_thread(store.open_handoff_of, conversation_id)
    reading = await _reading(request)
    # Every read of a conversation is an access to a user's data: audited, even a poll.
    await _audit(request, session.agent.id, "read", conversation_id, after=int(after))
    now = utcnow()
    return web.json_response(
        {
            "conversation": {
                "id": found.id,
                "channel": found.channel,
                "state": found.state,
                "started_at": _iso(found.started_at),
                "started_day": reading.day(found.started_at),
                "started_time": reading.time(found.started_at),
            },
            "handoff": handoff_json(handoff, session.agent.id, now, reading) if handoff else None,
            "turns": [turn_json(turn, reading) for turn in turns],
            "last": turns[-1].id if turns else int(after),
        }
    )


async def take(request: web.Request) -> web.Response:
    session = await _signed_in(request, write=True)
    handoff_id = int(request.match_info["handoff"])
    desk = request.config_dict[DESK]
    try:
        handoff = await desk.take(handoff_id, session.agent.id)
    except HandoffConflict:
        raise await _conflict(request, handoff_id) from None
    await _audit(request, session.agent.id, "take", handoff.conversation_id, handoff=handoff.id)
    reading = await _reading(request)
    return web.json_response(
        {"handoff": handoff_json(handoff, session.agent.id, utcnow(), reading)}
    )


async def release(request: web.Request) -> web.Response:
    session = await _signed_in(request, write=True)
    handoff_id = int(request.match_info["handoff"])
    desk = request.config_dict[DESK]
    try:
        handoff = await desk.release(handoff_id, session.agent.id)
    except HandoffConflict:
        raise await _conflict(request, handoff_id) from None
    await _audit(request, session.agent.id, "release", handoff.conversation_id, handoff=handoff.id)
    reading = await _reading(request)
    return web.json_response(
        {"handoff": handoff_json(handoff, session.agent.id, utcnow(), reading)}
    )


async def _conflict(request: web.Request, handoff_id: int) -> ConsoleError:
    """Why a take or release could not be done, in French: 404 or 409."""
    handoff = await asyncio.to_thread(request.config_dict[DESK].store.handoff, handoff_id)
    if handoff is None:
        return ConsoleError(404, NO_HANDOFF)
    if handoff.closed_at is not None:
        return ConsoleError(409, ALREADY_CLOSED)
    return ConsoleError(409, ALREADY_TAKEN.format(name=handoff.taken_by_name or "Un collègue"))


async def reply(request: web.Request) -> web.Response:
    """An agent's message to the user, delivered on the user's own channel."""
    session = await _signed_in(request, write=True)
    conversation_id = _conversation_id(request)
    body = await _body(request)
    text = body.get("text")
    if not isinstance(text, str):
        raise ConsoleError(400, BAD_REQUEST)
    text = clean_message(text)
    if not text:
        raise ConsoleError(400, EMPTY_REPLY)
    if len(text) > MAX_MESSAGE_CHARS:
        raise ConsoleError(413, REPLY_TOO_LONG)
    desk = request.config_dict[DESK]
    handoff = await asyncio.to_thread(desk.store.open_handoff_of, conversation_id)
    if handoff is None:
        exists = await asyncio.to_thread(desk.store.conversation, conversation_id)
        raise ConsoleError(409, NOT_WAITING) if exists else ConsoleError(404, NO_CONVERSATION)
    if handoff.taken_by is None:
        raise ConsoleError(409, TAKE_FIRST)
    if handoff.taken_by != session.agent.id:
        raise ConsoleError(409, ALREADY_TAKEN.format(name=handoff.taken_by_name))
    turn = await desk.reply(conversation_id, session.agent.id, text)
    await _audit(request, session.agent.id, "reply", conversation_id, chars=len(text))
    return web.json_response({"turn": turn_json(turn, await _reading(request))})


# ---------------------------------------------------------------------- the copilot


class Copilots:
    """The gateway's copilot, built on first use: it needs the gateway's HTTP client."""

    def __init__(self) -> None:
        self._copilot: Copilot | None = None

    def get(self, request: web.Request) -> Copilot:
        if self._copilot is None:
            store = request.config_dict[DESK].store
            parse = rasa_parser(request.config_dict[HTTP], request.config_dict[RASA])
            self._copilot = Copilot(Knowledge(store.engine), parse)
        return self._copilot


COPILOT = web.AppKey("console_copilot", Copilots)


async def suggest(request: web.Request) -> web.Response:
    """Answers the assistant would give to a text (`{"text"}`) or to a user's turn
    (`{"conversation", "turn"}`): `bot.support.copilot.Copilot.suggest`. Each answer and look-up
    also comes as `blocks` to show (`bot.gateway.rich_text`) and as `plain` text, what
    « Modifier » puts in the reply box; « Envoyer » sends the Markdown `text`, which the user's
    channel shows formatted."""
    session = await _signed_in(request, write=True)
    body = await _body(request)
    text = body.get("text")
    conversation_id = None
    if isinstance(body.get("turn"), int) and isinstance(body.get("conversation"), str):
        conversation_id, turn_id = body["conversation"], body["turn"]
        store = request.config_dict[DESK].store
        turns = await asyncio.to_thread(store.transcript, conversation_id, max(0, turn_id - 1))
        turn = next((t for t in turns if t.id == turn_id and t.role == USER), None)
        if turn is None:
            raise ConsoleError(404, NO_TURN)
        text = turn.text
    if not isinstance(text, str) or not text.strip():
        raise ConsoleError(400, BAD_REQUEST)
    if len(text) > MAX_MESSAGE_CHARS:
        raise ConsoleError(413, REPLY_TOO_LONG)
    suggestions = await request.app[COPILOT].get(request).suggest(text)
    await _audit(request, session.agent.id, "suggest", conversation_id, chars=len(text))
    shown = suggestions.as_json()
    for answer in (*shown["suggestions"], *shown["lookups"]):
        answer["blocks"] = rich_text.blocks(answer["text"])
        answer["plain"] = rich_text.plain(answer["text"])
    return web.json_response(shown)


# ---------------------------------------------------------------------- the statistics


async def _computed_insights(request: web.Request) -> support_insights.Insights:
    """`bot.support.insights.compute` over `?days=` (default 30)."""
    days = request.query.get("days", "30")
    if not (days.isascii() and days.isdigit()) or not 1 <= int(days) <= MAX_INSIGHTS_DAYS:
        raise ConsoleError(400, BAD_DAYS)
    engine = request.config_dict[DESK].store.engine
    return await asyncio.to_thread(support_insights.compute, engine, int(days))


async def insights(request: web.Request) -> web.Response:
    await _signed_in(request, (AGENT, ANALYST))
    computed = await _computed_insights(request)
    return web.json_response(computed.as_json())


async def insights_plot(request: web.Request) -> web.Response:
    await _signed_in(request, (AGENT, ANALYST))
    computed = await _computed_insights(request)
    png = await asyncio.to_thread(support_insights.plot_png, computed, request.match_info["kind"])
    return web.Response(body=png, content_type="image/png")


async def insights_candidates(request: web.Request) -> web.Response:
    """Questions the assistant did not understand, as candidate NLU examples (YAML)."""
    session = await _signed_in(request, (AGENT, ANALYST))
    computed = await _computed_insights(request)
    text = await asyncio.to_thread(support_insights.export_candidates, computed)
    await _audit(request, session.agent.id, "export_candidates")
    return web.Response(
        text=text,
        content_type="application/yaml",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="candidats-nlu.yml"'},
    )
