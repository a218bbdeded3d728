"""Telegram, served by the gateway itself: the Bot API webhook in, `sendMessage` out.

Rasa's own Telegram connector calls api.telegram.org at start-up (an offline machine cannot
start), fails on every update and never checks the webhook's secret token. Here the gateway
receives the updates, checks the secret on every one, answers 200 at once and does the work in a
background task: the user's text goes through the relay (redaction, rate limit, one message at a
time per conversation) and the bot's answers go back as Telegram HTML messages with buttons.

Registering the webhook is a separate command, never done at start-up:

    python -m bot.channels.telegram set-webhook | delete-webhook | webhook-info
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import sys
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from html import escape
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from bot.channels.text import split_at_lines
from bot.gateway.keys import DESK, HTTP, RELAY
from bot.gateway.relay import UNAVAILABLE, Refused, Relay
from bot.gateway.state import STATE, GatewayState, MemoryState
from bot.gateway.webhooks import (
    BackgroundReplies,
    BodyTooLarge,
    json_error,
    read_body,
)
from bot.support.store import ConversationView

logger = logging.getLogger(__name__)

ROUTE = "/webhooks/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DEFAULT_API_URL = "https://api.telegram.org"
ALLOWED_UPDATES = ["message", "callback_query"]
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what setWebhook accepts as secret_token

MAX_UPDATE_BYTES = 64 * 1024  # a 4096-character message and the one it replies to fit
API_TIMEOUT = ClientTimeout(total=10)
MAX_RETRY_AFTER_SECONDS = 5  # Bot API flood control: wait once if it asks for little
# Update ids already accepted are remembered this long (Telegram redelivers when we are slow,
# and keeps an unconfirmed update 24 hours).
REMEMBERED_UPDATES_SECONDS = 24 * 3600
REMEMBERED_BUTTONS_SECONDS = 7 * 24 * 3600  # a button id works this long after its last use
MAX_PENDING_UPDATES = 500  # beyond this, 503: Telegram delivers the update again later
SHUTDOWN_GRACE_SECONDS = 10
MAX_TEXT_CHARS = 4000  # Telegram accepts 4096 characters of text per message
MAX_BUTTONS = 100  # Telegram's limit per inline keyboard
SHORT_TITLE_CHARS = 16  # when every title is this short, buttons go two by row
BUTTON_ID_PREFIX = "b:"
SENDER_PREFIX = "tg-"
START_COMMAND = re.compile(r"/start(?:@\w+)?(?:\s.*)?", re.DOTALL)  # Telegram's first message
GREET = "/greet"

TEXT_ONLY = (
    "Je ne comprends que les messages écrits : tapez votre question, par exemple "
    "« mot de passe oublié »."
)
EDITED = "Je ne lis pas les messages modifiés : envoyez votre question dans un nouveau message."
PRIVATE_ONLY = (
    "Je réponds uniquement en conversation privée : écrivez-moi directement, jamais dans un "
    "groupe (vos données personnelles y seraient visibles)."
)
BUTTON_EXPIRED = "Ce bouton a expiré : retapez votre demande."
CHOOSE = "Choisissez :"  # Telegram requires a text above buttons
WRONG_SECRET = "Jeton secret absent ou invalide."
BAD_UPDATE = "Mise à jour Telegram illisible."
TOO_LARGE = "Mise à jour Telegram trop volumineuse."
BUSY = "Trop de messages en attente : réessayez plus tard."


class TelegramConfigError(ValueError):
    """A setting that keeps the channel from working, explained in French."""


class BotApiError(Exception):
    """The Bot API could not be reached or refused a call; the message is French."""


@dataclass(frozen=True)
class TelegramSettings:
    """The channel's settings; without a bot token the channel is off (its route answers 404)."""

    bot_token: str = field(default="", repr=False)
    api_url: str = DEFAULT_API_URL
    webhook_secret: str = field(default="", repr=False)
    public_url: str = ""

    def __post_init__(self) -> None:
        if self.bot_token and not SECRET_TOKEN.fullmatch(self.webhook_secret):
            raise TelegramConfigError(
                "TELEGRAM_WEBHOOK_SECRET est obligatoire quand TELEGRAM_BOT_TOKEN est défini : "
                "1 à 256 caractères parmi A-Z, a-z, 0-9, _ et -, par exemple la sortie de "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`."
            )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TelegramSettings:
        """`TELEGRAM_BOT_TOKEN`, `TELEGRAM_API_URL` (default the public Bot API),
        `TELEGRAM_WEBHOOK_SECRET` (required with a token), `TELEGRAM_PUBLIC_URL`."""
        env = os.environ if environ is None else environ
        return cls(
            bot_token=env.get("TELEGRAM_BOT_TOKEN", "").strip(),
            api_url=(env.get("TELEGRAM_API_URL", "").strip() or DEFAULT_API_URL).rstrip("/"),
            webhook_secret=env.get("TELEGRAM_WEBHOOK_SECRET", "").strip(),
            public_url=env.get("TELEGRAM_PUBLIC_URL", "").strip().rstrip("/"),
        )

    @property
    def enabled(self) -> bool:
        return bool(self.bot_token)

    def method_url(self, method: str) -> str:
        return f"{self.api_url.rstrip('/')}/bot{self.bot_token}/{method}"


class BotApi:
    """The Bot API methods the channel calls, on a client session it is given."""

    def __init__(self, settings: TelegramSettings, http: ClientSession) -> None:
        self._settings = settings
        self._http = http

    async def request(self, method: str, payload: dict[str, Any]) -> Any:
        """Call `method` and return its result; raises `BotApiError` (never with the token)."""
        for attempt in (1, 2):
            try:
                async with self._http.post(
                    self._settings.method_url(method), json=payload, timeout=API_TIMEOUT
                ) as reply:
                    status = reply.status
                    body = await reply.json(content_type=None)
            except (ClientError, asyncio.TimeoutError, ValueError) as error:
                # The exception's text may hold the URL, hence the token: only its type.
                raise BotApiError(
                    f"{method} : API Telegram injoignable à {self._settings.api_url} "
                    f"({type(error).__name__})"
                ) from None
            if isinstance(body, dict) and body.get("ok") is True:
                return body.get("result")
            body = body if isinstance(body, dict) else {}
            parameters = body.get("parameters")
            retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
            if (
                status == 429
                and attempt == 1
                and isinstance(retry_after, int)
                and retry_after <= MAX_RETRY_AFTER_SECONDS
            ):
                await asyncio.sleep(retry_after)
                continue
            description = str(body.get("description", ""))[:200]
            raise BotApiError(f"{method} refusé par Telegram (HTTP {status}) : {description}")
        raise AssertionError("unreachable")

    async def call(self, method: str, payload: dict[str, Any]) -> Any | None:
        """Like `request`, but a failure is logged (method and reason, never the text)."""
        try:
            return await self.request(method, payload)
        except BotApiError as error:
            logger.warning("telegram: %s", error)
            return None


class ButtonIds:
    """Short opaque `callback_data` for button payloads, remembered in the gateway's state
    (`bot.gateway.state`: a click may reach another gateway than the one that sent the button).

    Telegram allows 64 bytes of `callback_data`; a payload such as
    `/inform{"academie":"Aix-Marseille"}` may be longer, and must not travel through Telegram
    anyway. An id is a keyed hash of the chat and the payload: the same button gets the same id,
    and an id only works in the chat it was sent to. Ids expire `ttl` seconds after their last
    use (or when the local mode's memory is full).
    """

    def __init__(
        self,
        state: GatewayState,
        ttl: float = REMEMBERED_BUTTONS_SECONDS,
        key: bytes | None = None,
    ) -> None:
        self._state = state
        self._ttl = ttl
        self._key = key or secrets.token_bytes(32)

    async def id_for(self, chat_id: int, payload: str) -> str:
        message = f"{chat_id}\n{payload}".encode()
        button_id = BUTTON_ID_PREFIX + hmac.new(self._key, message, hashlib.sha256).hexdigest()[:16]
        await self._state.remember("telegram-button", button_id, message.decode(), self._ttl)
        return button_id

    async def payload_for(self, chat_id: int, button_id: str) -> str | None:
        entry = await self._state.recall("telegram-button", button_id, self._ttl)
        if entry is None:
            return None
        chat, payload = entry.split("\n", 1)
        return payload if chat == str(chat_id) else None


BOLD = re.compile(r"\*\*(.+?)\*\*")
BULLET = re.compile(r"^(\s*)- ", re.MULTILINE)


def telegram_html(text: str) -> str:
    """The bots' Markdown subset as Telegram HTML: `**x**` in bold, `- ` lines as bullets, and
    everything else escaped, so no text (the user's or the bot's) can inject markup."""
    text = BULLET.sub("\\1• ", text)
    parts: list[str] = []
    last = 0
    for match in BOLD.finditer(text):
        parts.append(escape(text[last : match.start()], quote=False))
        parts.append(f"<b>{escape(match.group(1), quote=False)}</b>")
        last = match.end()
    parts.append(escape(text[last:], quote=False))
    return "".join(parts)


def split_text(text: str, limit: int = MAX_TEXT_CHARS) -> list[str]:
    """Cut a long text into messages Telegram accepts, at line breaks where possible."""
    return split_at_lines(text, limit)


async def inline_keyboard(buttons: list[dict[str, str]], ids: ButtonIds, chat_id: int) -> dict:
    keys = [
        {"text": b["title"], "callback_data": await ids.id_for(chat_id, b["payload"])}
        for b in buttons[:MAX_BUTTONS]
    ]
    per_row = 2 if all(len(k["text"]) <= SHORT_TITLE_CHARS for k in keys) else 1
    return {"inline_keyboard": [keys[i : i + per_row] for i in range(0, len(keys), per_row)]}


class MalformedUpdate(ValueError):
    """An update that does not have the shape of Telegram's `Update` object."""


@dataclass(frozen=True)
class Incoming:
    """What one update asks of us. Without `chat_id` there is nothing to answer."""

    update_id: int
    chat_id: int | None = None
    text: str | None = None  # a text message in a private chat
    button: str | None = None  # the callback_data of a pressed button
    callback_id: str | None = None  # to answer with answerCallbackQuery
    notice: str | None = None  # a fixed French reply (sticker, edited message, group...)


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedUpdate("object expected")
    return value


def _integer(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedUpdate("integer expected")
    return value


def _optional_string(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise MalformedUpdate("string expected")
    return value


def _chat(message: Any) -> tuple[int, bool]:
    """The chat id of a message, and whether it is a private chat."""
    chat = _object(_object(message).get("chat"))
    return _integer(chat.get("id")), chat.get("type") == "private"


def read_update(update: Any) -> Incoming:
    """Reduce a Telegram `Update` to what the channel does with it; `MalformedUpdate` if its
    fields do not have Telegram's types."""
    update_id = _integer(_object(update).get("update_id"))
    if "message" in update:
        chat_id, private = _chat(update["message"])
        text = _optional_string(update["message"].get("text"))
        if not private:  # personal data must not be asked for in a group
            return (
                Incoming(update_id, chat_id, notice=PRIVATE_ONLY) if text else Incoming(update_id)
            )
        if text is None:
            return Incoming(update_id, chat_id, notice=TEXT_ONLY)
        return Incoming(update_id, chat_id, text=text)
    if "callback_query" in update:
        query = _object(update["callback_query"])
        callback_id = _optional_string(query.get("id"))
        if callback_id is None:
            raise MalformedUpdate("callback query without id")
        data = _optional_string(query.get("data")) or ""
        message = query.get("message")
        chat_id = None if message is None else _chat(message)[0]
        return Incoming(update_id, chat_id, button=data, callback_id=callback_id)
    if "edited_message" in update:
        chat_id, private = _chat(update["edited_message"])
        return Incoming(update_id, chat_id, notice=EDITED) if private else Incoming(update_id)
    return Incoming(update_id)  # channel posts, inline queries...: nothing to answer


class TelegramChannel:
    """The channel's state in the gateway: settings, button ids, update ids already seen, and
    the background tasks answering updates (awaited, then cancelled, at shutdown)."""

    def __init__(self, settings: TelegramSettings, state: GatewayState | None = None) -> None:
        self.settings = settings
        # Update ids seen, button ids, one turn at a time per chat: shared by the gateways.
        self._state = state or MemoryState()
        self.buttons = ButtonIds(self._state)
        self._replies = BackgroundReplies("telegram", logger)

    def authentic(self, secret: str | None) -> bool:
        expected = self.settings.webhook_secret.encode()
        given = (secret or "").encode("utf-8", "replace")
        return bool(expected) and hmac.compare_digest(given, expected)

    @property
    def busy(self) -> bool:
        return len(self._replies) >= MAX_PENDING_UPDATES

    async def first_delivery(self, update_id: int) -> bool:
        """True the first time an update id is seen (recently): Telegram redelivers."""
        return await self._state.first_delivery(
            "telegram-update", str(update_id), REMEMBERED_UPDATES_SECONDS
        )

    def start(self, work: Coroutine[Any, Any, None]) -> None:
        self._replies.start(work)

    async def wait_idle(self) -> None:
        """Wait until every update received so far has been answered."""
        await self._replies.settle()

    async def close(self, grace_seconds: float = SHUTDOWN_GRACE_SECONDS) -> None:
        """Let the updates in progress finish for a while, then cancel the rest."""
        await self._replies.close(grace_seconds)

    async def answer(self, incoming: Incoming, relay: Relay, api: BotApi) -> None:
        """Do what an update asks and send the replies; every failure ends in a French reply."""
        if incoming.callback_id is not None:  # stops the spinner on the user's button
            await api.call("answerCallbackQuery", {"callback_query_id": incoming.callback_id})
        if incoming.chat_id is None:
            return
        async with self._state.turn(f"telegram:{incoming.chat_id}"):
            try:
                messages = await self._bot_messages(incoming, relay)
            except Refused as refused:
                messages = [{"text": refused.message}]
            except Exception as error:  # ours: say so politely, log without the message
                logger.error(
                    "telegram: update %s failed: %s", incoming.update_id, type(error).__name__
                )
                messages = [{"text": UNAVAILABLE}]
            for message in messages:
                await self._send(api, incoming.chat_id, message)

    async def _bot_messages(self, incoming: Incoming, relay: Relay) -> list[dict[str, Any]]:
        chat_id = incoming.chat_id
        assert chat_id is not None
        if incoming.notice is not None:
            return [{"text": incoming.notice}]
        if incoming.button is not None:
            payload = await self.buttons.payload_for(chat_id, incoming.button)
            if payload is None:
                return [{"text": BUTTON_EXPIRED}]
            text = payload
        else:
            text = incoming.text or ""
            if START_COMMAND.fullmatch(text.strip()):
                text = GREET
        exchange = await relay.send(f"{SENDER_PREFIX}{chat_id}", text)
        return exchange.messages

    async def deliver(
        self, app: web.Application, conversation: ConversationView, messages: list[dict[str, Any]]
    ) -> None:
        """An agent's message (or the desk's notice) to a user, in their chat."""
        if not self.settings.enabled:
            raise RuntimeError("telegram is not configured")
        chat_id = int(conversation.id.removeprefix(SENDER_PREFIX))
        api = BotApi(self.settings, app[HTTP])
        async with self._state.turn(f"telegram:{chat_id}"):
            for message in messages:
                await self._send(api, chat_id, message)

    async def _send(self, api: BotApi, chat_id: int, message: dict[str, Any]) -> None:
        text = message.get("text") or ""
        buttons = [b for b in message.get("buttons", []) if b["title"] and b["payload"]]
        if not text.strip() and not buttons:
            return
        chunks = split_text(text if text.strip() else CHOOSE)
        for number, chunk in enumerate(chunks, start=1):
            payload: dict[str, Any] = {
                "chat_id": chat_id,
                "text": telegram_html(chunk),
                "parse_mode": "HTML",
                "link_preview_options": {"is_disabled": True},
            }
            if buttons and number == len(chunks):
                payload["reply_markup"] = await inline_keyboard(buttons, self.buttons, chat_id)
            await api.call("sendMessage", payload)


TELEGRAM = web.AppKey("telegram", TelegramChannel)


async def telegram_webhook(request: web.Request) -> web.Response:
    """Check and accept one update at once; answering it happens in the background."""
    channel = request.app[TELEGRAM]
    if not channel.settings.enabled:
        raise web.HTTPNotFound()
    if not channel.authentic(request.headers.get(SECRET_HEADER)):
        logger.warning("telegram: update refused, missing or wrong secret token")
        return json_error(401, WRONG_SECRET)
    try:
        incoming = read_update(json.loads(await read_body(request, MAX_UPDATE_BYTES)))
    except BodyTooLarge:
        logger.warning("telegram: update refused, more than %d bytes", MAX_UPDATE_BYTES)
        return json_error(413, TOO_LARGE)
    except (ValueError, RecursionError):  # bad JSON, bad UTF-8, or not an Update
        logger.warning("telegram: update refused, not a Telegram Update")
        return json_error(400, BAD_UPDATE)
    if channel.busy:
        logger.warning("telegram: update %s deferred, too many in progress", incoming.update_id)
        return json_error(503, BUSY)
    if await channel.first_delivery(incoming.update_id):
        api = BotApi(channel.settings, request.app[HTTP])
        channel.start(channel.answer(incoming, request.app[RELAY], api))
    return web.json_response({"ok": True})


async def _finish_updates(app: web.Application) -> None:
    await app[TELEGRAM].close()


def setup_telegram(app: web.Application, settings: TelegramSettings | None = None) -> None:
    """Serve `POST /webhooks/telegram` on the gateway (404 while no bot token is set); settings
    default to the environment's. Called again, it only replaces the settings."""
    first_time = TELEGRAM not in app
    app[TELEGRAM] = TelegramChannel(
        TelegramSettings.from_env() if settings is None else settings, app[STATE]
    )
    if first_time:
        app[DESK].register_delivery("telegram", _deliver_to(app))
        app.router.add_post(ROUTE, telegram_webhook)
        app.on_shutdown.append(_finish_updates)  # before cleanup_ctx closes the client session


def _deliver_to(app: web.Application):
    async def deliver(conversation: ConversationView, messages: list[dict[str, Any]]) -> None:
        await app[TELEGRAM].deliver(app, conversation, messages)  # the current settings

    return deliver


def _require_token(settings: TelegramSettings) -> None:
    if not settings.enabled:
        raise TelegramConfigError(
            "TELEGRAM_BOT_TOKEN n'est pas défini : copiez le jeton donné par @BotFather."
        )


async def _bot_api_call(settings: TelegramSettings, method: str, payload: dict) -> Any:
    _require_token(settings)
    async with ClientSession() as http:
        return await BotApi(settings, http).request(method, payload)


async def set_webhook(settings: TelegramSettings) -> str:
    """Ask Telegram to deliver updates to the gateway, with the secret token; French summary."""
    if not settings.public_url.startswith("https://"):
        raise TelegramConfigError(
            "TELEGRAM_PUBLIC_URL doit être l'adresse https publique de la passerelle, par "
            "exemple https://assistant.example.fr (Telegram n'accepte que https)."
        )
    url = settings.public_url + ROUTE
    await _bot_api_call(
        settings,
        "setWebhook",
        {
            "url": url,
            "secret_token": settings.webhook_secret,
            "allowed_updates": ALLOWED_UPDATES,
            "drop_pending_updates": False,
        },
    )
    return f"Webhook Telegram enregistré : les messages seront envoyés à {url}."


async def delete_webhook(settings: TelegramSettings) -> str:
    await _bot_api_call(settings, "deleteWebhook", {"drop_pending_updates": False})
    return "Webhook Telegram supprimé : Telegram n'envoie plus les messages à la passerelle."


async def webhook_info(settings: TelegramSettings) -> str:
    info = await _bot_api_call(settings, "getWebhookInfo", {})
    info = info if isinstance(info, dict) else {}
    lines = [
        f"Adresse enregistrée : {info.get('url') or '(aucune)'}",
        f"Messages en attente de livraison : {info.get('pending_update_count', 0)}",
    ]
    if info.get("last_error_message"):
        lines.append(f"Dernière erreur de livraison : {info['last_error_message']}")
    return "\n".join(lines)


COMMANDS: dict[str, Callable[[TelegramSettings], Awaitable[str]]] = {
    "set-webhook": set_webhook,
    "delete-webhook": delete_webhook,
    "webhook-info": webhook_info,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bot.channels.telegram",
        description="Enregistre, supprime ou affiche le webhook du bot Telegram.",
    )
    parser.add_argument("command", choices=sorted(COMMANDS))
    args = parser.parse_args(argv)
    try:
        print(asyncio.run(COMMANDS[args.command](TelegramSettings.from_env())))
    except (TelegramConfigError, BotApiError) as error:
        print(f"Erreur : {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
