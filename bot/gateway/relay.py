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
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from aiohttp import ClientError, ClientSession
from sqlalchemy.exc import SQLAlchemyError

from bot import config
from bot.answers import handoff
from bot.gateway.limits import CHORE_KINDS, ChoreLimits, GatewayLimits, RateLimiter
from bot.gateway.turns import ConversationTurns
from bot.gateway.webhooks import BoundedDict
from bot.personal_data.redaction import redact
from bot.personal_data.vault import Vault
from bot.support.desk import SupportDesk, handoff_event
from bot.support.models import BOT
from bot.support.store import TurnNlu

logger = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 2000
MAX_TRACKED_SENDERS = 50_000
MAX_PAYLOADS_PER_SENDER = 200
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
UNAVAILABLE = (
    "L'assistant est momentanément indisponible. Réessayez dans un instant ; si le problème "
    "persiste, contactez votre assistance académique."
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


class TurnCounter:
    """User messages per conversation in its current session (in memory: one gateway process),
    forgotten after the session's idle expiry, like Rasa's session."""

    def __init__(self, limit: int, idle_seconds: float) -> None:
        self.limit = limit
        self._idle = idle_seconds
        self._counts: BoundedDict[str, tuple[int, float]] = BoundedDict(MAX_TRACKED_SENDERS)

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


class Relay:
    def __init__(
        self,
        rasa_url: str | Sequence[str],
        http: ClientSession,
        vault: Vault,
        desk: SupportDesk,
        limiter: RateLimiter | None = None,
        turns: TurnCounter | None = None,
        limits: GatewayLimits | None = None,
    ) -> None:
        urls = [rasa_url] if isinstance(rasa_url, str) else list(rasa_url)
        self.replicas = [url.rstrip("/") for url in urls]
        self.rasa_url = self.replicas[0]
        self._counter = turns or TurnCounter(
            config.max_turns_per_session(), config.session_expiration_minutes() * 60
        )
        self._http = http
        self._vault = vault
        self.desk = desk
        limits = limits or GatewayLimits.from_env()
        self._limiter = limiter or RateLimiter(*limits.per_conversation)
        self._chores = ChoreLimits(limits)
        self._turns = ConversationTurns()
        # sender -> payloads of the buttons offered (an insertion-ordered dict used as a set)
        self._offered: BoundedDict[str, dict[str, None]] = BoundedDict(MAX_TRACKED_SENDERS)

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
        text = clean_message(text)
        if not text:
            raise Refused(400, EMPTY)
        if len(text) > MAX_MESSAGE_CHARS:
            raise Refused(413, TOO_LONG)
        if not self._limiter.allow(sender):
            raise Refused(429, TOO_FAST)
        redacted = redact(text, date.today())
        if CHORE_KINDS & redacted.values.keys() and not self._chores.allow(client or sender):
            logger.warning("chore attempts throttled (per address or for everyone)")
            raise Refused(429, CHORE_TOO_FAST)
        if redacted.values:
            try:
                await asyncio.to_thread(self._vault.put, sender, redacted.values)
            except SQLAlchemyError:  # our database is down: the values must not go anywhere else
                logger.warning("vault unreachable: a message with personal values was refused")
                raise Refused(503, UNAVAILABLE) from None
        forwarded = (
            PASSWORD_SHARED if redacted.password else self._payload_or_text(sender, redacted.text)
        )
        shown = PASSWORD_HIDDEN if redacted.password else redacted.text
        # One message at a time per conversation, in arrival order (a double click waits).
        async with self._turns.turn(sender):
            state = await self._state(sender)
            if state != BOT:
                # A handoff is open: the message is for the agent, the assistant is paused.
                messages, last = await self.desk.while_paused(sender, state, shown)
                self._remember_buttons(sender, messages)
                return Exchange(shown, messages, await self._state(sender), last)
            if forwarded.lower().strip(" .!") in START_OVER_WORDS:
                forwarded = START_OVER
            if forwarded == START_OVER:
                self._counter.reset(sender)
            elif not self._counter.add(sender):
                messages = [
                    {
                        "text": TURN_LIMIT,
                        "buttons": [{"title": "Recommencer", "payload": START_OVER}],
                    }
                ]
                self._remember_buttons(sender, messages)
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
        self._remember_buttons(sender, messages)
        return Exchange(shown, messages, await self._state(sender) if handoff else BOT, last)

    async def end(self, sender: str) -> None:
        """End a conversation for good (the user cleared it on a shared computer): its vault
        values are forgotten, an open handoff is closed, Rasa starts a new session (its slots
        are emptied), and the gateway forgets its buttons and turn count. Best effort for Rasa:
        the sender is never used again, so a Rasa that is down loses nothing."""
        async with self._turns.turn(sender):
            try:
                await asyncio.to_thread(self._vault.forget, sender)
                handoff = await asyncio.to_thread(self.desk.store.open_handoff_of, sender)
                if handoff is not None:
                    released = await asyncio.to_thread(self.desk.store.release, handoff.id, None)
                    self.desk.events.publish(handoff_event("released", released))
            except SQLAlchemyError:
                logger.warning("database unreachable while a conversation was cleared")
                raise Refused(503, UNAVAILABLE) from None
            self._counter.reset(sender)
            self._offered.pop(sender, None)
            with contextlib.suppress(Refused):  # logged by _post
                await self._post(sender, START_OVER)

    async def _state(self, sender: str) -> str:
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

    def _payload_or_text(self, sender: str, text: str) -> str:
        """A typed "/intent{...}" is not an intent unless the bot offered that button."""
        if not text.startswith("/") or text in ALWAYS_ALLOWED_PAYLOADS:
            return text
        if text in self._offered.get(sender, ()):
            return text
        return text.lstrip("/ ") or text

    def _remember_buttons(self, sender: str, messages: list[dict[str, Any]]) -> None:
        payloads = [b["payload"] for m in messages for b in m.get("buttons", ())]
        if payloads:
            # Earlier buttons stay valid (a voter may click one further up), within a bound.
            offered = self._offered.pop(sender, {})
            offered.update(dict.fromkeys(payloads))
            while len(offered) > MAX_PAYLOADS_PER_SENDER:
                offered.pop(next(iter(offered)))
            self._offered[sender] = offered

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
