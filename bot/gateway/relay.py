"""The one way a user's message reaches Rasa, whatever the channel (web page, Telegram, Slack).

`Relay.send` cleans the text, enforces the length and per-sender rate limits, redacts personal
values into the vault (they never reach Rasa, whose tracker store keeps texts in clear), relays
to Rasa's REST channel with the sender id the channel assigned, and returns the bot's messages
in a channel-neutral shape: `{"text": ..., "buttons": [{"title", "payload"}]}`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import unicodedata
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from typing import Any

from aiohttp import ClientError, ClientSession

from bot import config
from bot.personal_data.redaction import redact
from bot.personal_data.vault import Vault

logger = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 2000
MAX_TRACKED_SENDERS = 50_000
# Sent to Rasa instead of a message that looks like it holds a password: never forwarded.
PASSWORD_SHARED = "/password_shared"
PASSWORD_HIDDEN = "(message masqué : il semblait contenir un mot de passe)"

EMPTY = "Votre message est vide : écrivez votre question, par exemple « mot de passe oublié »."
TOO_LONG = (
    f"Votre message est trop long ({MAX_MESSAGE_CHARS} caractères au plus) : "
    "posez votre question en quelques phrases."
)
TOO_FAST = "Vous envoyez beaucoup de messages : patientez quelques secondes, puis réessayez."
UNAVAILABLE = (
    "L'assistant est momentanément indisponible. Réessayez dans un instant ; si le problème "
    "persiste, contactez votre assistance académique."
)


class Refused(Exception):
    """A message the relay will not send: `status` is the HTTP status, `message` French text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Exchange:
    """What the user said, as it may be shown again (redacted), and what the bot answered."""

    shown_text: str
    messages: list[dict[str, Any]]


def clean_message(text: str) -> str:
    """Drop control characters (keep line breaks) and surrounding blanks."""
    kept = (c for c in text if c in "\n\t" or unicodedata.category(c)[0] != "C")
    return "".join(kept).strip()


class RateLimiter:
    """A token bucket per sender, in memory (one gateway process; sticky routing in production)."""

    def __init__(self, per_minute: int, burst: int) -> None:
        self._rate = per_minute / 60
        self._burst = burst
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, sender: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(sender, (float(self._burst), now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        allowed = tokens >= 1
        self._buckets[sender] = (tokens - 1 if allowed else tokens, now)
        while len(self._buckets) > MAX_TRACKED_SENDERS:
            self._buckets.popitem(last=False)
        return allowed


class Relay:
    def __init__(
        self, rasa_url: str, http: ClientSession, vault: Vault, limiter: RateLimiter | None = None
    ) -> None:
        self.rasa_url = rasa_url.rstrip("/")
        self._http = http
        self._vault = vault
        self._limiter = limiter or RateLimiter(*config.rate_limit())
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}  # sender -> (lock, users)

    async def send(self, sender: str, text: str) -> Exchange:
        """Relay one message of `sender`; raises `Refused` with a French explanation."""
        text = clean_message(text)
        if not text:
            raise Refused(400, EMPTY)
        if len(text) > MAX_MESSAGE_CHARS:
            raise Refused(413, TOO_LONG)
        if not self._limiter.allow(sender):
            raise Refused(429, TOO_FAST)
        redacted = redact(text, date.today())
        if redacted.values:
            await asyncio.to_thread(self._vault.put, sender, redacted.values)
        forwarded = PASSWORD_SHARED if redacted.password else redacted.text
        # One message at a time per conversation, in arrival order (a double click waits).
        lock, users = self._locks.get(sender, (asyncio.Lock(), 0))
        self._locks[sender] = (lock, users + 1)
        try:
            async with lock:
                messages = await self._post(sender, forwarded)
        finally:
            lock, users = self._locks[sender]
            if users == 1:
                del self._locks[sender]
            else:
                self._locks[sender] = (lock, users - 1)
        shown = PASSWORD_HIDDEN if redacted.password else redacted.text
        return Exchange(shown, messages)

    async def _post(self, sender: str, text: str) -> list[dict[str, Any]]:
        try:
            async with self._http.post(
                f"{self.rasa_url}/webhooks/rest/webhook", json={"sender": sender, "message": text}
            ) as reply:
                if reply.status != 200:
                    logger.warning("rasa answered HTTP %s", reply.status)
                    raise Refused(503, UNAVAILABLE)
                bot_messages = await reply.json()
        except (ClientError, TimeoutError, json.JSONDecodeError):
            logger.warning("rasa unreachable at %s", self.rasa_url)
            raise Refused(503, UNAVAILABLE) from None
        return [bot_message(m) for m in bot_messages if isinstance(m, dict)]


def bot_message(message: dict[str, Any]) -> dict[str, Any]:
    """A message of Rasa's REST channel, reduced to text and buttons (both strings)."""
    out: dict[str, Any] = {}
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
