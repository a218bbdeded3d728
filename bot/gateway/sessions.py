"""The browser's conversation cookie (`sid`): only values this gateway issued are accepted.

A value is a random part and its HMAC-SHA256 under `GATEWAY_SESSION_KEY` (a fresh key at each
start when unset: the conversations of earlier runs then start afresh). A forged, truncated or
unknown value gets a new conversation, never someone else's. A cleared conversation's value is
revoked until it would have expired anyway, in the gateway's state (`bot.gateway.state`: shared
by every gateway in the production mode); the browser's copy is deleted at the same time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets

from bot.gateway.state import GatewayState

logger = logging.getLogger(__name__)

RANDOM_BYTES = 32
REVOKED = "revoked-session"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def session_key() -> bytes:
    """`GATEWAY_SESSION_KEY`, or a fresh random key (logged, never its value)."""
    key = os.environ.get("GATEWAY_SESSION_KEY", "")
    if key:
        return key.encode()
    logger.warning("GATEWAY_SESSION_KEY not set: a fresh one is used until the next restart")
    return secrets.token_bytes(32)


class SessionTokens:
    def __init__(self, key: bytes, max_age_seconds: float, state: GatewayState) -> None:
        self._key = key
        self._max_age = max_age_seconds
        self._state = state

    def issue(self) -> str:
        random_part = _b64(secrets.token_bytes(RANDOM_BYTES))
        return f"{random_part}.{self._signature(random_part)}"

    async def valid(self, token: str) -> bool:
        if len(token) > 100 or token.count(".") != 1 or not token.isascii():
            return False
        random_part, signature = token.split(".")
        expected = self._signature(random_part)
        if not hmac.compare_digest(signature, expected):
            return False
        return await self._state.recall(REVOKED, token, self._max_age) is None

    async def revoke(self, token: str) -> None:
        # A browser drops the cookie after max-age: the revocation need not outlive it.
        await self._state.remember(REVOKED, token, "", self._max_age)

    def _signature(self, random_part: str) -> str:
        return _b64(hmac.new(self._key, random_part.encode(), hashlib.sha256).digest())
