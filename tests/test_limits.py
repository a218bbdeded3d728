"""Limits that dropping the cookie cannot dodge: per client address, for the chores, behind
trusted proxies only. The gateway runs on loopback in front of a fake Rasa that records what
reaches it (`tests/test_gateway.py`'s); the database is a real SQLite file."""

from __future__ import annotations

from collections import Counter

import pytest
from aiohttp.test_utils import TestClient

from bot.gateway.app import NEW_CONVERSATIONS_TOO_FAST, sender_id
from bot.gateway.limits import GatewayLimits, trusted_proxies
from bot.gateway.relay import CHORE_TOO_FAST
from bot.personal_data.vault import Vault
from tests.test_gateway import with_fake_rasa

NUMEN = "01E9501234ABC"
# A guess: the NUMEN of someone else, with one birth date after another.
GUESSES = [f"{NUMEN} né le {day:02d}/03/1980" for day in range(1, 29)]


async def send_without_cookie(client: TestClient, text: str, address: str | None = None):
    """One message from a client that drops its cookie each time (a new conversation)."""
    client.session.cookie_jar.clear()
    headers = {"X-Forwarded-For": address} if address else {}
    return await client.post("/api/chat", json={"message": text}, headers=headers)


def test_sixty_messages_without_a_cookie_from_one_address_open_ten_conversations(monkeypatch):
    monkeypatch.delenv("GATEWAY_ADDRESS_NEW_CONVERSATIONS_PER_MINUTE", raising=False)

    async def scenario(client: TestClient, received: list[dict], vault: Vault) -> None:
        replies = [await send_without_cookie(client, "bonjour") for _ in range(60)]
        statuses = Counter(reply.status for reply in replies)
        assert statuses == {200: 10, 429: 50}
        assert len(received) == 10
        assert (await replies[-1].json())["error"] == NEW_CONVERSATIONS_TOO_FAST
        # Another address (behind the trusted local proxy) is not affected.
        other = await send_without_cookie(client, "bonjour", "203.0.113.9")
        assert other.status == 200

    with_fake_rasa(scenario)


def test_one_address_with_many_cookies_is_limited_per_address(monkeypatch):
    monkeypatch.setenv("GATEWAY_ADDRESS_NEW_CONVERSATIONS_PER_MINUTE", "1000")
    monkeypatch.setenv("GATEWAY_ADDRESS_RATE_PER_MINUTE", "60")
    monkeypatch.setenv("GATEWAY_ADDRESS_RATE_BURST", "20")

    async def scenario(client: TestClient, received: list[dict], vault: Vault) -> None:
        replies = [await send_without_cookie(client, "webmail Lyon") for _ in range(30)]
        assert Counter(reply.status for reply in replies) == {200: 20, 429: 10}

    with_fake_rasa(scenario)


def test_guessing_a_birth_date_through_many_conversations_from_one_address_is_stopped(
    monkeypatch,
):
    """Each guess in a new conversation (no cookie), with the address limits on new
    conversations lifted: the chores' own limit stops the guessing, and the refused values
    never reach the vault nor Rasa."""
    monkeypatch.setenv("GATEWAY_ADDRESS_NEW_CONVERSATIONS_PER_MINUTE", "1000")
    monkeypatch.delenv("GATEWAY_CHORE_ATTEMPTS_PER_ADDRESS_PER_MINUTE", raising=False)

    async def scenario(client: TestClient, received: list[dict], vault: Vault) -> None:
        statuses, senders = [], []
        for guess in GUESSES:
            reply = await send_without_cookie(client, guess, "198.51.100.7")
            statuses.append(reply.status)
            cookie = reply.cookies.get("sid")
            senders.append(sender_id(cookie.value) if cookie else None)
            if reply.status == 429:
                assert (await reply.json())["error"] == CHORE_TOO_FAST
        assert Counter(statuses) == {200: 6, 429: len(GUESSES) - 6}
        assert len(received) == 6 and all("NUMEN_MASQUE" in r["message"] for r in received)
        refused = [s for s, status in zip(senders, statuses, strict=True) if status == 429 and s]
        assert refused and all(vault.get(s, "numen") is None for s in refused)
        # An ordinary question from that address still goes through; another address's
        # chore too.
        assert (await send_without_cookie(client, "webmail Lyon", "198.51.100.7")).status == 200
        elsewhere = await send_without_cookie(client, GUESSES[0], "198.51.100.8")
        assert elsewhere.status == 200

    with_fake_rasa(scenario)


def test_the_chores_have_a_limit_for_everyone_together(monkeypatch):
    monkeypatch.setenv("GATEWAY_ADDRESS_NEW_CONVERSATIONS_PER_MINUTE", "1000")
    monkeypatch.setenv("GATEWAY_CHORE_ATTEMPTS_PER_MINUTE", "10")

    async def scenario(client: TestClient, received: list[dict], vault: Vault) -> None:
        statuses = [
            (await send_without_cookie(client, GUESSES[n], f"192.0.2.{n}")).status
            for n in range(15)
        ]
        assert Counter(statuses) == {200: 10, 429: 5}

    with_fake_rasa(scenario)


def test_forwarded_addresses_are_believed_only_from_trusted_proxies():
    limits = GatewayLimits(proxies=trusted_proxies("127.0.0.1, 10.0.0.0/8"))
    # Behind the proxy: the client is the last address the proxies did not add.
    assert limits.client_address("127.0.0.1", "203.0.113.5") == "203.0.113.5"
    assert limits.client_address("127.0.0.1", "203.0.113.5, 10.1.2.3") == "203.0.113.5"
    # A client cannot pretend to be someone else by prepending addresses.
    assert limits.client_address("127.0.0.1", "1.2.3.4, 203.0.113.5") == "203.0.113.5"
    # A direct client's X-Forwarded-For is ignored.
    assert limits.client_address("203.0.113.5", "1.2.3.4") == "203.0.113.5"
    assert limits.client_address("127.0.0.1", None) == "127.0.0.1"
    no_proxy = GatewayLimits(proxies=trusted_proxies(""))
    assert no_proxy.client_address("127.0.0.1", "203.0.113.5") == "127.0.0.1"
    with pytest.raises(ValueError, match="GATEWAY_TRUSTED_PROXIES"):
        trusted_proxies("proxy.example")
