"""Every limit of the gateway, its default and its environment variable, in one place.

Per conversation (the `sid` cookie): messages per minute. Per client address (the peer, or the
first address before the trusted proxies in `X-Forwarded-For`): messages per minute and
conversations created per minute, so dropping the cookie gives nothing. For the chores (a
message carrying a NUMEN, a birth date or an e-mail address: what guessing needs): attempts per
minute per address and for the whole gateway. The buckets are kept by the gateway's state
(`bot.gateway.state`: in memory in the local mode, in Redis and shared by every gateway in the
production mode).

Variables (default):
- `GATEWAY_RATE_PER_MINUTE`, `GATEWAY_RATE_BURST` (30, 10): messages of one conversation;
- `GATEWAY_ADDRESS_RATE_PER_MINUTE`, `GATEWAY_ADDRESS_RATE_BURST` (120, 40): messages of one
  address;
- `GATEWAY_ADDRESS_NEW_CONVERSATIONS_PER_MINUTE` (10, burst as many): conversations (cookies)
  one address starts;
- `GATEWAY_CHORE_ATTEMPTS_PER_ADDRESS_PER_MINUTE` (6, burst as many): messages with a chore
  value from one address;
- `GATEWAY_CHORE_ATTEMPTS_PER_MINUTE` (300, burst as many): the same, all addresses together;
- `GATEWAY_TRUSTED_PROXIES` (`127.0.0.1,::1`): reverse proxies whose `X-Forwarded-For` is
  believed (addresses or networks, comma-separated; empty: none).
"""

from __future__ import annotations

import ipaddress
import os
import time
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from bot.gateway.webhooks import BoundedDict

MAX_TRACKED_KEYS = 50_000
# The values a voter types for a chore; guessing a NUMEN and a birth date needs one per guess.
CHORE_KINDS = frozenset({"numen", "birth_date", "email"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RateLimiter:
    """A token bucket per key (a conversation, an address, or one key for everything)."""

    def __init__(self, per_minute: float, burst: float) -> None:
        self._rate = per_minute / 60
        self._burst = burst
        # key -> (tokens, when); each use sets it again: the least recently used goes first
        self._buckets: BoundedDict[str, tuple[float, float]] = BoundedDict(MAX_TRACKED_KEYS)

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(key, (float(self._burst), now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        allowed = tokens >= 1
        self._buckets[key] = (tokens - 1 if allowed else tokens, now)
        return allowed


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, str(default)))


def trusted_proxies(value: str | None = None) -> tuple[Network, ...]:
    """`GATEWAY_TRUSTED_PROXIES`: addresses or networks (`10.0.0.0/8`) of the reverse proxies."""
    raw = os.environ.get("GATEWAY_TRUSTED_PROXIES", "127.0.0.1,::1") if value is None else value
    networks = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(
                f"GATEWAY_TRUSTED_PROXIES : adresse invalide « {item} » "
                "(attendu : une adresse IP ou un réseau, par exemple 10.0.0.0/8)"
            ) from None
    return tuple(networks)


@dataclass(frozen=True)
class GatewayLimits:
    per_conversation: tuple[int, int] = (30, 10)
    per_address: tuple[int, int] = (120, 40)
    new_conversations_per_address: int = 10
    chore_attempts_per_address: int = 6
    chore_attempts: int = 300
    proxies: tuple[Network, ...] = ()

    @classmethod
    def from_env(cls) -> GatewayLimits:
        return cls(
            per_conversation=(
                _int("GATEWAY_RATE_PER_MINUTE", 30),
                _int("GATEWAY_RATE_BURST", 10),
            ),
            per_address=(
                _int("GATEWAY_ADDRESS_RATE_PER_MINUTE", 120),
                _int("GATEWAY_ADDRESS_RATE_BURST", 40),
            ),
            new_conversations_per_address=_int("GATEWAY_ADDRESS_NEW_CONVERSATIONS_PER_MINUTE", 10),
            chore_attempts_per_address=_int("GATEWAY_CHORE_ATTEMPTS_PER_ADDRESS_PER_MINUTE", 6),
            chore_attempts=_int("GATEWAY_CHORE_ATTEMPTS_PER_MINUTE", 300),
            proxies=trusted_proxies(),
        )

    def address_of(self, request: web.BaseRequest) -> str:
        """The address a request comes from (the client's, through the trusted proxies)."""
        return self.client_address(request.remote, request.headers.get("X-Forwarded-For"))

    def client_address(self, peer: str | None, forwarded_for: str | None) -> str:
        """The client's address: the peer, unless it is a trusted proxy; then the first address
        of `X-Forwarded-For`, read from the right, that is not a trusted proxy (a client can
        prepend anything, it cannot remove what the proxies appended)."""
        chain = [peer or ""]
        if forwarded_for:
            chain = [part.strip() for part in forwarded_for.split(",")] + chain
        for address in reversed(chain):
            if not self._trusted(address):
                return address
        return chain[0]

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.proxies)


class Buckets(Protocol):
    """Where the token buckets are kept (`bot.gateway.state.GatewayState`)."""

    async def allow(self, bucket: str, key: str, per_minute: float, burst: float) -> bool: ...


class AddressLimits:
    """The limits that do not depend on a cookie: messages and new conversations per address."""

    def __init__(self, limits: GatewayLimits, buckets: Buckets) -> None:
        self.limits = limits
        self._buckets = buckets

    async def allow_new_conversation(self, address: str) -> bool:
        new = self.limits.new_conversations_per_address
        return await self._buckets.allow("new-conversations", address, new, new)

    async def allow_message(self, address: str) -> bool:
        return await self._buckets.allow("address", address, *self.limits.per_address)


class ChoreLimits:
    """Messages carrying a chore value, per address (or per sender on channels without one) and
    for the whole gateway (every gateway together, in the production mode)."""

    def __init__(self, limits: GatewayLimits, buckets: Buckets) -> None:
        self._per_client = limits.chore_attempts_per_address
        self._everyone = limits.chore_attempts
        self._buckets = buckets

    async def allow(self, client: str) -> bool:
        per_client = self._per_client
        return await self._buckets.allow(
            "chores", client, per_client, per_client
        ) and await self._buckets.allow("chores-everyone", "*", self._everyone, self._everyone)
