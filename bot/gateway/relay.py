"""The one way a user's message reaches Rasa, whatever the channel (web page, Telegram, Slack).

`Relay.send` cleans the text, enforces the length and per-sender rate limits, redacts personal
values into the vault (they never reach Rasa, whose tracker store keeps texts in clear), relays
to Rasa's REST channel with the sender id the channel assigned, and returns the bot's messages
in a channel-neutral shape: `{"text": ..., "buttons": [{"title", "payload"}]}`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from aiohttp import ClientError, ClientSession
from sqlalchemy.exc import SQLAlchemyError

from bot import config
from bot.answers import handoff
from bot.gateway.limits import CHORE_KINDS, ChoreLimits, GatewayLimits
from bot.gateway.state import UNAVAILABLE, GatewayState, MemoryState, StateUnavailable
from bot.personal_data.redaction import redact
from bot.personal_data.vault import Vault
from bot.support.desk import SupportDesk, handoff_event
from bot.support.models import BOT
from bot.support.store import TurnNlu

logger = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 2000
# Sent to Rasa instead of a message that looks like it holds a password: never forwarded.
PASSWORD_SHARED = "/password_shared"
PASSWORD_HIDDEN = "(message masqué : il semblait contenir un mot de passe)"
# A message starting with "/" is an intent for Rasa: accepted only when it is the payload of a
# button the bot offered to this sender (or one of these), otherwise sent as plain text.
# Rasa's built-in intent that starts a new session: the way out of a too long conversation.
START_OVER = "/session_start"
ALWAYS_ALLOWED_PAYLOADS = {"/greet", "/help", "/cancel", START_OVER}

EMPTY = "Votre message est vide : écrivez votre question, par exemple « mot de passe oublié »."
TOO_LONG = (
    f"Votre message est trop long ({MAX_MESSAGE_CHARS} caractères au plus) : "
    "posez votre question en quelques phrases."
)
TOO_FAST = "Vous envoyez beaucoup de messages : patientez quelques secondes, puis réessayez."
CHORE_TOO_FAST = (
    "Trop de demandes avec un NUMEN, une date de naissance ou une adresse ont été faites depuis "
    "votre connexion : patientez une minute, puis réessayez. Si vous avez perdu vos "
    "identifiants, votre assistance académique peut aussi vous aider."
)
TURN_LIMIT = (
    "Cette conversation est devenue très longue : pour que l'assistant reste rapide pour tous, "
    "recommencez une nouvelle conversation (bouton « Recommencer » ou tapez « recommencer »), "
    "puis reposez votre question."
)
STARTED_OVER = "C'est reparti : posez votre question."
START_OVER_WORDS = {"recommencer", "nouvelle conversation"}


class Refused(Exception):
    """A message the relay will not send: `status` is the HTTP status, `message` French text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Exchange:
    """What the user said, as it may be shown again (redacted), what they are answered, the
    conversation's state afterwards (`bot`, `waiting` for an agent, `agent`), and the id of its
    last stored turn (to fetch later ones: an agent's replies)."""

    shown_text: str
    messages: list[dict[str, Any]]
    state: str = BOT
    last_turn: int = 0


def clean_message(text: str) -> str:
    """Drop control characters (keep line breaks) and surrounding blanks."""
    kept = (c for c in text if c in "\n\t" or unicodedata.category(c)[0] != "C")
    return "".join(kept).strip()


def replica_for(sender: str, replicas: Sequence[str]) -> str:
    """The replica that serves `sender`, always the same one (rendezvous hashing: adding or
    removing a replica moves only the conversations that must move)."""
    return max(replicas, key=lambda url: hashlib.sha256(f"{url}|{sender}".encode()).digest())


class Relay:
    def __init__(
        self,
        rasa_url: str | Sequence[str],
        http: ClientSession,
        vault: Vault,
        desk: SupportDesk,
        limits: GatewayLimits | None = None,
        state: GatewayState | None = None,
    ) -> None:
        urls = [rasa_url] if isinstance(rasa_url, str) else list(rasa_url)
        self.replicas = [url.rstrip("/") for url in urls]
        self.rasa_url = self.replicas[0]
        self._max_turns = config.max_turns_per_session()
        self._session_seconds = config.session_expiration_minutes() * 60
        self._http = http
        self._vault = vault
        self.desk = desk
        self._limits = limits or GatewayLimits.from_env()
        # Rate buckets, turn counts, offered buttons, one turn at a time: shared by the gateways.
        self._state = state or MemoryState()
        self._chores = ChoreLimits(self._limits, self._state)

    async def send(
        self,
        sender: str,
        text: str,
        address: dict[str, Any] | None = None,
        client: str | None = None,
    ) -> Exchange:
        """Relay one message of `sender`; raises `Refused` with a French explanation.

        `address` is where the channel delivers later messages (an agent's) to this user;
        `client` is the network address the message came from (web chat), for the chores'
        limit (channels without one are limited per sender)."""
        try:
            return await self._send(sender, text, address, client)
        except StateUnavailable:
            raise Refused(503, UNAVAILABLE) from None

    async def _send(
        self, sender: str, text: str, address: dict[str, Any] | None, client: str | None
    ) -> Exchange:
        text = clean_message(text)
        if not text:
            raise Refused(400, EMPTY)
        if len(text) > MAX_MESSAGE_CHARS:
            raise Refused(413, TOO_LONG)
        if not await self._state.allow("conversation", sender, *self._limits.per_conversation):
            raise Refused(429, TOO_FAST)
        redacted = redact(text, date.today())
        if CHORE_KINDS & redacted.values.keys() and not await self._chores.allow(client or sender):
            logger.warning("chore attempts throttled (per address or for everyone)")
            raise Refused(429, CHORE_TOO_FAST)
        if redacted.values:
            try:
                await asyncio.to_thread(self._vault.put, sender, redacted.values)
            except SQLAlchemyError:  # our database is down: the values must not go anywhere else
                logger.warning("vault unreachable: a message with personal values was refused")
                raise Refused(503, UNAVAILABLE) from None
        forwarded = (
            PASSWORD_SHARED
            if redacted.password
            else await self._payload_or_text(sender, redacted.text)
        )
        shown = PASSWORD_HIDDEN if redacted.password else redacted.text
        # One message at a time per conversation, in arrival order (a double click waits).
        async with self._state.turn(f"relay:{sender}"):
            state = await self._conversation_state(sender)
            if state != BOT:
                # A handoff is open: the message is for the agent, the assistant is paused.
                messages, last = await self.desk.while_paused(sender, state, shown)
                await self._remember_buttons(sender, messages)
                return Exchange(shown, messages, await self._conversation_state(sender), last)
            if forwarded.lower().strip(" .!") in START_OVER_WORDS:
                forwarded = START_OVER
            if forwarded == START_OVER:
                await self._state.reset_turns(sender)
            elif not await self._state.count_turn(sender, self._max_turns, self._session_seconds):
                messages = [
                    {
                        "text": TURN_LIMIT,
                        "buttons": [{"title": "Recommencer", "payload": START_OVER}],
                    }
                ]
                await self._remember_buttons(sender, messages)
                return Exchange(shown, messages)
            messages, nlu = await self._post(sender, forwarded)
            if forwarded == START_OVER:
                # A new session says nothing (the channel may call that silence an incident);
                # had it failed, the next message would show it.
                messages = [{"text": STARTED_OVER}]
            handoff = next((m["handoff"] for m in messages if "handoff" in m), None)
            messages = [m for m in messages if "handoff" not in m]
            turns = await self._record(sender, shown, nlu, messages, address)
            last = turns[-1].id if turns else 0
            if handoff:
                notice, last = await self.desk.request_handoff(sender, handoff)
                messages += notice
        await self._remember_buttons(sender, messages)
        state = await self._conversation_state(sender) if handoff else BOT
        return Exchange(shown, messages, state, last)

    async def end(self, sender: str) -> None:
        """End a conversation for good (the user cleared it on a shared computer): its vault
        values are forgotten, an open handoff is closed, Rasa starts a new session (its slots
        are emptied), and the gateway forgets its buttons and turn count. Best effort for Rasa:
        the sender is never used again, so a Rasa that is down loses nothing."""
        try:
            await self._end(sender)
        except StateUnavailable:
            raise Refused(503, UNAVAILABLE) from None

    async def _end(self, sender: str) -> None:
        async with self._state.turn(f"relay:{sender}"):
            try:
                await asyncio.to_thread(self._vault.forget, sender)
                handoff = await asyncio.to_thread(self.desk.store.open_handoff_of, sender)
                if handoff is not None:
                    released = await asyncio.to_thread(self.desk.store.release, handoff.id, None)
                    await self.desk.events.publish(handoff_event("released", released))
            except SQLAlchemyError:
                logger.warning("database unreachable while a conversation was cleared")
                raise Refused(503, UNAVAILABLE) from None
            await self._state.reset_turns(sender)
            await self._state.forget_buttons(sender)
            with contextlib.suppress(Refused):  # logged by _post
                await self._post(sender, START_OVER)

    async def _conversation_state(self, sender: str) -> str:
        try:
            return await self.desk.state(sender)
        except SQLAlchemyError:
            logger.exception("support desk unreachable: answering with the assistant")
            return BOT

    async def _record(self, sender, shown, nlu, messages, address) -> list:
        """Keep the exchange for the agents and the insights; a database failure costs the
        record, not the answer."""
        try:
            return await self.desk.record_exchange(sender, shown, nlu, messages, address)
        except SQLAlchemyError:
            logger.exception("could not record an exchange")
            return []

    async def _payload_or_text(self, sender: str, text: str) -> str:
        """A typed "/intent{...}" is not an intent unless the bot offered that button."""
        if not text.startswith("/") or text in ALWAYS_ALLOWED_PAYLOADS:
            return text
        if await self._state.was_offered(sender, text):
            return text
        return text.lstrip("/ ") or text

    async def _remember_buttons(self, sender: str, messages: list[dict[str, Any]]) -> None:
        payloads = [b["payload"] for m in messages for b in m.get("buttons", ())]
        # Earlier buttons stay valid (a voter may click one further up), within a bound, for
        # as long as Rasa's session.
        await self._state.offer_buttons(sender, payloads, self._session_seconds)

    async def _post(self, sender: str, text: str) -> tuple[list[dict[str, Any]], TurnNlu | None]:
        replica = replica_for(sender, self.replicas)
        try:
            async with self._http.post(
                f"{replica}/webhooks/gateway/webhook",
                json={"sender": sender, "message": text},
                headers=config.rasa_channel_headers(),
            ) as reply:
                if reply.status != 200:
                    logger.warning("rasa answered HTTP %s", reply.status)
                    raise Refused(503, UNAVAILABLE)
                answer = await reply.json()
        except (ClientError, asyncio.TimeoutError, json.JSONDecodeError):
            logger.warning("rasa unreachable at %s", replica)
            raise Refused(503, UNAVAILABLE) from None
        if not isinstance(answer, dict) or not isinstance(answer.get("messages"), list):
            logger.warning("rasa answered an unexpected body")
            raise Refused(503, UNAVAILABLE)
        messages = [bot_message(m) for m in answer["messages"] if isinstance(m, dict)]
        return [m for m in messages if m], _nlu(answer.get("nlu"))


def _nlu(value: Any) -> TurnNlu | None:
    if not isinstance(value, dict) or not isinstance(value.get("intent"), str):
        return None
    confidence = value.get("confidence")
    return TurnNlu(
        value["intent"], float(confidence) if isinstance(confidence, int | float) else None
    )


def bot_message(message: dict[str, Any]) -> dict[str, Any]:
    """A message of Rasa's channel, reduced to text and buttons (both strings), or to the
    request for a human (`{"handoff": reason}`, read from the actions' custom payload)."""
    out: dict[str, Any] = {}
    reason = handoff.reason_of(message.get("custom"))
    if reason is not None:
        out["handoff"] = reason
    if isinstance(message.get("text"), str):
        out["text"] = message["text"]
    buttons = message.get("buttons")
    if isinstance(buttons, list):
        out["buttons"] = [
            {"title": str(b.get("title", "")), "payload": str(b.get("payload", ""))}
            for b in buttons
            if isinstance(b, dict)
        ]
    return out
