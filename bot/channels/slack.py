"""Slack: the Events API and interactivity webhooks, answered through the gateway's relay.

Slack posts each event to `/webhooks/slack/events` and each button click to
`/webhooks/slack/interactive`. Every request must carry a valid signature made with the app's
signing secret less than five minutes ago (no replays). It is acknowledged at once, because Slack
sends it again after 3 seconds without an answer, and de-duplicated, so that a retry never runs
an action twice (two SMS). The answer is prepared in a background task: the user's text goes
through `Relay.send` like on every channel, and the bot's messages come back through the Web API
(`chat.postMessage`) as Block Kit sections and buttons.

Only direct messages are answered: the assistant deals with NUMEN and phone numbers, which have
no place in a shared channel.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import re
import time
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import parse_qs

from aiohttp import ClientError, ClientSession, ClientTimeout, web
from yarl import URL

from bot.channels.text import split_at_lines
from bot.gateway.keys import DESK, HTTP, RELAY
from bot.gateway.relay import UNAVAILABLE, Refused
from bot.gateway.state import STATE, GatewayState, MemoryState
from bot.gateway.webhooks import BackgroundReplies, BodyTooLarge, read_body
from bot.support.store import ConversationView

logger = logging.getLogger(__name__)

EVENTS_PATH = "/webhooks/slack/events"
INTERACTIVE_PATH = "/webhooks/slack/interactive"
DEFAULT_API_URL = "https://slack.com/api"
RESPONSE_URL_HOST = "hooks.slack.com"  # where Slack's `response_url`s point

MAX_CLOCK_SKEW_SECONDS = 5 * 60  # Slack's own recommendation against replayed requests
MAX_BODY_BYTES = 128 * 1024  # a click sends back the whole message, with up to 50 blocks
# Event ids and clicks already handled are remembered this long (Slack retries for 5 minutes).
REMEMBERED_DELIVERIES_SECONDS = 3600
MAX_WAITING_TURNS = 20  # per conversation; beyond, a flood is dropped rather than queued
SLACK_TIMEOUT = ClientTimeout(total=10)
SHUTDOWN_GRACE_SECONDS = 5.0

# Block Kit limits.
MAX_SECTION_CHARS = 3000
MAX_BLOCKS = 50
MAX_BUTTONS_PER_BLOCK = 25
MAX_BUTTON_TITLE_CHARS = 75
MAX_BUTTON_VALUE_CHARS = 2000
MAX_FALLBACK_CHARS = 3000

BUTTON_PREFIX = "rasa-"  # action_id and block_id of the buttons this module posts
SLACK_ID = re.compile(r"[A-Za-z0-9]{1,32}")  # team, user and channel ids: T0123, U0123, D0123
TIMESTAMP = re.compile(r"\d{1,12}")
BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*")
BULLET = re.compile(r"^- ", re.MULTILINE)
SLACK_LINK = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")

CHOICE = "Votre choix : *{title}*"
ONLY_BUTTONS = "Choisissez une réponse ci-dessous."


@dataclass(frozen=True)
class SlackSettings:
    """The Slack app's credentials; the channel is off (its routes answer 404) without a token."""

    bot_token: str = field(default="", repr=False)
    signing_secret: str = field(default="", repr=False)
    api_url: str = DEFAULT_API_URL  # another base URL lets tests use a fake Web API

    @property
    def enabled(self) -> bool:
        return bool(self.bot_token)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SlackSettings:
        """`SLACK_BOT_TOKEN`, `SLACK_SIGNING_SECRET` (required with a token), `SLACK_API_URL`."""
        env = os.environ if environ is None else environ
        token = env.get("SLACK_BOT_TOKEN", "").strip()
        secret = env.get("SLACK_SIGNING_SECRET", "").strip()
        if token and not secret:
            raise RuntimeError(
                "SLACK_SIGNING_SECRET n'est pas défini : copiez le « Signing Secret » de "
                "l'application Slack (Basic Information > App Credentials), ou retirez "
                "SLACK_BOT_TOKEN pour désactiver Slack."
            )
        api_url = env.get("SLACK_API_URL", "").strip() or DEFAULT_API_URL
        return cls(token, secret, api_url.rstrip("/"))


# ---------------------------------------------------------------- signatures


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The `X-Slack-Signature` Slack computes for a request body sent at `timestamp`."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def is_authentic(
    secret: str, timestamp: str, given: str, body: bytes, now: float | None = None
) -> bool:
    """Signed with our secret less than five minutes ago (or ahead: clocks drift)."""
    if not secret or not TIMESTAMP.fullmatch(timestamp):
        return False
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > MAX_CLOCK_SKEW_SECONDS:
        return False
    expected = signature(secret, timestamp, body).encode()
    return hmac.compare_digest(expected, given.encode("utf-8", "replace"))


# ---------------------------------------------------------------- text both ways


def to_mrkdwn(text: str) -> str:
    """The bot's Markdown subset as Slack mrkdwn; `<`, `>`, `&` escaped, so no `<!channel>`."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return BULLET.sub("• ", BOLD.sub(r"*\1*", escaped))


def from_slack_text(text: str) -> str:
    """What the user typed: Slack wraps links (`<http://x|x>`, `<mailto:…>`) and escapes `<>&`."""

    def plain(link: re.Match[str]) -> str:
        target, label = link.group(1), link.group(2)
        if label:
            return label
        if target.startswith(("@", "#", "!")):
            return ""  # a mention means nothing to the assistant
        return target.removeprefix("mailto:")

    unlinked = SLACK_LINK.sub(plain, text)
    return unlinked.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _button(button: dict[str, str], index: int) -> dict[str, Any] | None:
    payload = button.get("payload", "")
    if not payload or len(payload) > MAX_BUTTON_VALUE_CHARS:
        logger.warning("slack: a button whose payload does not fit a Slack button was left out")
        return None
    title = " ".join(button.get("title", "").split()) or payload
    if len(title) > MAX_BUTTON_TITLE_CHARS:
        title = title[: MAX_BUTTON_TITLE_CHARS - 1] + "…"
    return {
        "type": "button",
        "action_id": f"{BUTTON_PREFIX}{index}",
        "text": {"type": "plain_text", "text": title, "emoji": True},
        "value": payload,
    }


def blocks_for(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Block Kit blocks of the bot's messages of one turn: sections, then their buttons.

    The button blocks of one message share a block_id prefix, so that a click can replace them
    all (31 académies take two blocks of 25) and leave the other messages' buttons alone.
    """
    blocks: list[dict[str, Any]] = []
    button_count = 0
    for number, message in enumerate(messages):
        text = message.get("text") or ""
        for piece in split_at_lines(to_mrkdwn(text), MAX_SECTION_CHARS, escaped=True):
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": piece}})
        elements = []
        for button in message.get("buttons") or ():
            element = _button(button, button_count)
            if element is not None:
                elements.append(element)
                button_count += 1
        for start in range(0, len(elements), MAX_BUTTONS_PER_BLOCK):
            blocks.append(
                {
                    "type": "actions",
                    "block_id": f"{BUTTON_PREFIX}{number}-{start // MAX_BUTTONS_PER_BLOCK}",
                    "elements": elements[start : start + MAX_BUTTONS_PER_BLOCK],
                }
            )
    return blocks


def fallback_text(blocks: list[dict[str, Any]]) -> str:
    """The `text` Slack shows in notifications: the sections' text, already escaped."""
    sections = [b["text"]["text"] for b in blocks if b.get("type") == "section"]
    text = "\n".join(sections) or ONLY_BUTTONS
    return text if len(text) <= MAX_FALLBACK_CHARS else text[: MAX_FALLBACK_CHARS - 1] + "…"


def _block_group(block_id: Any) -> str | None:
    """`rasa-3-` for `rasa-3-1`: the button blocks of the same bot message."""
    if isinstance(block_id, str) and block_id.startswith(BUTTON_PREFIX):
        return block_id.rsplit("-", 1)[0] + "-"
    return None


def with_choice(blocks: list[Any], block_id: str, title: str) -> list[dict[str, Any]]:
    """The clicked message, its buttons replaced by the user's choice (no second click)."""
    group = _block_group(block_id)
    choice = {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": CHOICE.format(title=to_mrkdwn(title))}],
    }
    kept: list[dict[str, Any]] = []
    for block in blocks:
        if not isinstance(block, dict):
            continue
        if group and str(block.get("block_id", "")).startswith(group):
            if choice not in kept:
                kept.append(choice)
            continue
        kept.append(block)
    if choice not in kept:
        kept.append(choice)
    return kept


# ---------------------------------------------------------------- what Slack sends


class Malformed(ValueError):
    """A signed request whose content is not shaped as Slack documents it."""


@dataclass(frozen=True)
class Turn:
    """Something a Slack user said (a message, or a button's payload) and where to answer."""

    sender: str
    channel: str
    text: str


@dataclass(frozen=True)
class Click:
    """A click on one of our buttons, and what is needed to show the choice in its message."""

    turn: Turn
    key: tuple[str, str]  # (action_ts, user): the same click delivered twice
    title: str
    block_id: str
    response_url: str | None
    message: dict[str, Any]


def sender_id(team: str, user: str) -> str:
    """The Rasa sender id of a Slack user: one conversation per user and workspace."""
    return f"slack-{team}-{user}"


def _slack_id(value: Any) -> str:
    if not isinstance(value, str) or not SLACK_ID.fullmatch(value):
        raise Malformed("not a Slack id")
    return value


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Malformed("not an object")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise Malformed("not a string")
    return value


def _bot_users(envelope: dict[str, Any]) -> set[str]:
    """Our own bot user, as Slack names it in the event's `authorizations`."""
    authorizations = envelope.get("authorizations")
    if not isinstance(authorizations, list):
        return set()
    return {
        a["user_id"]
        for a in authorizations
        if isinstance(a, dict) and a.get("is_bot") is True and isinstance(a.get("user_id"), str)
    }


def direct_message(envelope: dict[str, Any]) -> Turn | None:
    """The user's turn in an `event_callback`, or None for what the assistant does not answer:
    other events, other conversations than DMs, bots (ourselves), edits, joins, files."""
    team = _slack_id(envelope.get("team_id"))
    event = _object(envelope.get("event"))
    if event.get("type") != "message" or event.get("channel_type") != "im":
        return None
    if event.get("subtype") is not None or event.get("bot_id") is not None:
        return None
    user = _slack_id(event.get("user"))
    if user in _bot_users(envelope):
        return None
    channel = _slack_id(event.get("channel"))
    text = _text(event.get("text", ""))
    return Turn(sender_id(team, user), channel, from_slack_text(text))


def button_click(payload: dict[str, Any]) -> Click | None:
    """A click on one of our buttons in a `block_actions` payload, or None."""
    user = _object(payload.get("user"))
    user_id = _slack_id(user.get("id"))
    team = payload.get("team")
    team_id = _slack_id(team.get("id") if isinstance(team, dict) else user.get("team_id"))
    actions = payload.get("actions")
    if not isinstance(actions, list):
        raise Malformed("no actions")
    action = next(
        (
            a
            for a in actions
            if isinstance(a, dict)
            and a.get("type") == "button"
            and str(a.get("action_id", "")).startswith(BUTTON_PREFIX)
        ),
        None,
    )
    if action is None:
        return None
    value = _text(action.get("value"))
    action_ts = _text(action.get("action_ts"))
    channel = payload.get("channel")
    container = payload.get("container")
    if isinstance(channel, dict):
        channel_id = _slack_id(channel.get("id"))
    elif isinstance(container, dict) and container.get("channel_id") is not None:
        channel_id = _slack_id(container.get("channel_id"))
    else:
        return None  # a button outside a conversation (not one of ours)
    label = action.get("text")
    title = label.get("text") if isinstance(label, dict) else None
    response_url = payload.get("response_url")
    message = payload.get("message")
    return Click(
        turn=Turn(sender_id(team_id, user_id), channel_id, value),
        key=(action_ts, user_id),
        title=title if isinstance(title, str) else value,
        block_id=str(action.get("block_id", "")),
        response_url=response_url if isinstance(response_url, str) else None,
        message=message if isinstance(message, dict) else {},
    )


# ---------------------------------------------------------------- the Web API


async def post_message(
    http: ClientSession, settings: SlackSettings, channel: str, blocks: list[dict[str, Any]]
) -> bool:
    """`chat.postMessage`; a failure is logged (Slack's error code, never the text)."""
    body = {
        "channel": channel,
        "text": fallback_text(blocks),
        "blocks": blocks,
        "unfurl_links": False,  # the answers cite portals: no previews around them
    }
    url = f"{settings.api_url}/chat.postMessage"
    return await _call(http, url, body, "chat.postMessage", settings.bot_token)


async def _call(
    http: ClientSession, url: str, body: dict[str, Any], name: str, token: str | None = None
) -> bool:
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if token is not None:  # the Web API; a response_url needs no token
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body, ensure_ascii=False).encode()
    try:
        async with http.post(
            url, data=data, headers=headers, timeout=SLACK_TIMEOUT, allow_redirects=False
        ) as reply:
            status = reply.status
            answer = await reply.json(content_type=None) if status == 200 else None
    except (ClientError, asyncio.TimeoutError, ValueError):
        logger.warning("slack %s: Slack unreachable or unreadable", name)
        return False
    if not isinstance(answer, dict) or answer.get("ok") is not True:
        error = answer.get("error") if isinstance(answer, dict) else None
        logger.warning("slack %s failed: HTTP %s, error %.64s", name, status, error)
        return False
    return True


# ---------------------------------------------------------------- the channel


class SlackChannel:
    """The two webhooks, and the replies being prepared in the background."""

    def __init__(self, settings: SlackSettings, state: GatewayState | None = None) -> None:
        self.settings = settings
        # Deliveries seen, one turn at a time per conversation: shared by the gateways, so a
        # retry reaching another gateway is recognised.
        self._state = state or MemoryState()
        self._replies = BackgroundReplies("slack", logger)

    async def events(self, request: web.Request) -> web.Response:
        body = await self._signed_body(request)
        if request.content_type != "application/json":
            raise web.HTTPUnsupportedMediaType(text="JSON attendu.")
        try:
            envelope = _object(json.loads(body))
            kind = envelope.get("type")
            if kind == "url_verification":
                return web.json_response({"challenge": _text(envelope.get("challenge"))})
            if kind != "event_callback":
                return web.Response()
            event_id = _text(envelope.get("event_id"))
            turn = direct_message(envelope)
        except (ValueError, RecursionError):  # JSON, UTF-8 and shape errors alike
            raise web.HTTPBadRequest(text="Événement Slack illisible.") from None
        if not await self._first_time("slack-event", event_id):
            retry = request.headers.get("X-Slack-Retry-Num", "?")
            logger.info("slack: event %.40s delivered again (retry %.4s), ignored", event_id, retry)
            return web.Response()
        if turn is not None:
            self._start(turn.sender, self._answer(request.app, turn))
        return web.Response()

    async def interactive(self, request: web.Request) -> web.Response:
        body = await self._signed_body(request)
        if request.content_type != "application/x-www-form-urlencoded":
            raise web.HTTPUnsupportedMediaType(text="Formulaire attendu.")
        try:
            form = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=20)
            payload = _object(json.loads(form.get("payload", [""])[0]))
            if payload.get("type") != "block_actions":
                return web.Response()
            click = button_click(payload)
        except (ValueError, RecursionError):
            raise web.HTTPBadRequest(text="Action Slack illisible.") from None
        if click is None or not await self._first_time("slack-click", "\n".join(click.key)):
            return web.Response()
        self._start(click.turn.sender, self._answer_click(request.app, click))
        return web.Response()

    async def _first_time(self, kind: str, key: str) -> bool:
        return await self._state.first_delivery(kind, key, REMEMBERED_DELIVERIES_SECONDS)

    async def _signed_body(self, request: web.Request) -> bytes:
        if not self.settings.enabled:
            raise web.HTTPNotFound()
        try:
            body = await read_body(request, MAX_BODY_BYTES)
        except BodyTooLarge as too_large:
            raise web.HTTPRequestEntityTooLarge(MAX_BODY_BYTES, too_large.size) from None
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        given = request.headers.get("X-Slack-Signature", "")
        if not is_authentic(self.settings.signing_secret, timestamp, given, body):
            logger.warning("slack: request with a bad or stale signature refused")
            raise web.HTTPUnauthorized(text="Signature Slack invalide ou périmée.")
        return body

    def _start(self, sender: str, work: Coroutine[Any, Any, None]) -> None:
        if self._state.waiting(f"slack:{sender}") >= MAX_WAITING_TURNS:
            work.close()
            logger.warning("slack: too many turns waiting in one conversation, one dropped")
            return
        self._replies.start(work)

    async def _answer(self, app: web.Application, turn: Turn) -> None:
        async with self._state.turn(f"slack:{turn.sender}"):
            try:
                exchange = await app[RELAY].send(
                    turn.sender, turn.text, address={"channel": turn.channel}
                )
                messages = exchange.messages
            except Refused as refused:
                messages = [{"text": refused.message}]
            except Exception as error:  # e.g. a timeout the relay let through
                logger.error("slack: the relay failed (%s)", type(error).__name__)
                messages = [{"text": UNAVAILABLE}]
            blocks = blocks_for(messages)
            for start in range(0, len(blocks), MAX_BLOCKS):
                chunk = blocks[start : start + MAX_BLOCKS]
                await post_message(app[HTTP], self.settings, turn.channel, chunk)

    async def deliver(
        self, app: web.Application, conversation: ConversationView, messages: list[dict[str, Any]]
    ) -> None:
        """An agent's message (or the desk's notice) to a user, in the channel of their DM."""
        channel = conversation.address.get("channel")
        if not self.settings.enabled or not isinstance(channel, str):
            raise RuntimeError("slack conversation without a channel to deliver to")
        async with self._state.turn(f"slack:{conversation.id}"):
            blocks = blocks_for(messages)
            for start in range(0, len(blocks), MAX_BLOCKS):
                chunk = blocks[start : start + MAX_BLOCKS]
                if not await post_message(app[HTTP], self.settings, channel, chunk):
                    raise RuntimeError("chat.postMessage failed")

    async def _answer_click(self, app: web.Application, click: Click) -> None:
        await self._show_choice(app[HTTP], click)
        await self._answer(app, click.turn)

    async def _show_choice(self, http: ClientSession, click: Click) -> None:
        if click.response_url is None:
            return
        if not self.may_call(click.response_url):
            logger.warning("slack: response_url to an unexpected host ignored")
            return
        blocks = click.message.get("blocks")
        text = click.message.get("text")
        body = {
            "replace_original": True,
            "text": text if isinstance(text, str) else ONLY_BUTTONS,
            "blocks": with_choice(
                blocks if isinstance(blocks, list) else [], click.block_id, click.title
            ),
        }
        await _call(http, click.response_url, body, "response_url")

    def may_call(self, url: str) -> bool:
        """Only Slack's hooks host or our Web API's host: a payload must not aim us elsewhere."""
        try:
            target = URL(url)
            if not target.is_absolute():
                return False
            if target.origin() == URL(self.settings.api_url).origin():
                return True
        except ValueError:
            return False
        return target.scheme == "https" and target.host == RESPONSE_URL_HOST and target.port == 443

    async def settle(self, timeout: float | None = None) -> bool:
        """Wait for the replies being prepared; False if some are still running at `timeout`."""
        return await self._replies.settle(timeout)

    async def close(self, app: web.Application) -> None:
        """At shutdown, before the HTTP session closes: finish the replies, then give up."""
        await self._replies.close(SHUTDOWN_GRACE_SECONDS)


SLACK = web.AppKey("slack", SlackChannel)


def setup_slack(app: web.Application, settings: SlackSettings | None = None) -> None:
    """Add the Slack webhooks to the gateway (they answer 404 while Slack is not configured)."""
    channel = SlackChannel(settings or SlackSettings.from_env(), app[STATE])
    if not channel.settings.enabled:
        logger.info("slack channel off: SLACK_BOT_TOKEN is not set")
    app[SLACK] = channel
    app[DESK].register_delivery("slack", partial(channel.deliver, app))
    app.router.add_post(EVENTS_PATH, channel.events)
    app.router.add_post(INTERACTIVE_PATH, channel.interactive)
    app.on_shutdown.append(channel.close)
