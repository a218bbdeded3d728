"""The web gateway: the chat page, its API, and the errors a browser can cause."""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import Awaitable, Callable

from aiohttp.test_utils import TestClient, TestServer
from cryptography.fernet import Fernet

from bot.gateway.app import MAX_MESSAGE_CHARS, create_app, sender_id
from bot.gateway.relay import RateLimiter
from bot.knowledge.store import make_engine
from bot.local_stack import free_port
from bot.personal_data.vault import Vault

Scenario = Callable[[TestClient], Awaitable[None]]


def with_gateway(rasa_url: str, scenario: Scenario) -> None:
    async def main() -> None:
        with tempfile.TemporaryDirectory() as folder:
            vault = Vault(make_engine(f"sqlite:///{folder}/vault.db"), Fernet.generate_key())
            async with TestClient(TestServer(create_app(rasa_url, vault=vault))) as client:
                await scenario(client)

    asyncio.run(main())


def test_the_page_is_french_and_loads_its_own_script_and_style():
    async def scenario(client: TestClient) -> None:
        page = await client.get("/")
        html = await page.text()
        assert page.status == 200
        assert '<html lang="fr">' in html
        assert "/static/chat.js" in html and "/static/chat.css" in html
        assert not re.search(r'(?:src|href)="(?:https?:)?//', html)  # nothing from outside
        script = await client.get("/static/chat.js")
        assert script.status == 200
        assert ".innerHTML" not in await script.text()

    with_gateway(f"http://127.0.0.1:{free_port()}", scenario)


def test_errors_a_user_can_cause_get_french_sentences():
    async def scenario(client: TestClient) -> None:
        cases = [
            ({"message": ""}, 400, "vide"),
            ({"message": " \n\t "}, 400, "vide"),
            ({"message": "x" * (MAX_MESSAGE_CHARS + 1)}, 413, "trop long"),
            ({"message": 42}, 400, "illisible"),
            (["pas", "un", "objet"], 400, "illisible"),
        ]
        for body, status, words in cases:
            reply = await client.post("/api/chat", json=body)
            assert reply.status == status, body
            assert words in (await reply.json())["error"]
        broken = await client.post(
            "/api/chat", data="{pas du json", headers={"Content-Type": "application/json"}
        )
        assert broken.status == 400
        huge = await client.post("/api/chat", data="x" * 100_000)
        assert huge.status == 413

    with_gateway(f"http://127.0.0.1:{free_port()}", scenario)


def test_when_rasa_is_down_the_user_is_told_to_retry():
    async def scenario(client: TestClient) -> None:
        reply = await client.post("/api/chat", json={"message": "bonjour"})
        assert reply.status == 503
        assert "momentanément indisponible" in (await reply.json())["error"]
        health = await (await client.get("/health")).json()
        assert health == {"gateway": "ok", "rasa": "down"}

    with_gateway(f"http://127.0.0.1:{free_port()}", scenario)


def test_a_conversation_through_the_gateway_keeps_its_history(live_bot):
    async def scenario(client: TestClient) -> None:
        first = await client.post("/api/chat", json={"message": "webmail"})
        assert first.status == 200
        offered = [b for m in (await first.json())["messages"] for b in m.get("buttons", [])]
        nantes = next(b for b in offered if b["title"] == "Nantes")
        second = await client.post("/api/chat", json={"message": nantes["payload"]})
        assert "webmel.ac-nantes.fr" in str(await second.json())
        history = (await (await client.get("/api/history")).json())["messages"]
        assert [m["sender"] for m in history][:2] == ["user", "bot"]
        assert history[0]["text"] == "webmail"
        user_turns = [m["text"] for m in history if m["sender"] == "user"]
        assert user_turns == ["webmail", "Nantes"]  # the button's title, not its payload

    with_gateway(live_bot.url, scenario)


def test_each_browser_has_its_own_conversation(live_bot):
    async def scenario(client: TestClient) -> None:
        await client.post("/api/chat", json={"message": "webmail Lille"})
        cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))["sid"].value
        client.session.cookie_jar.clear()
        fresh = (await (await client.get("/api/history")).json())["messages"]
        assert fresh == []
        assert sender_id(cookie).startswith("web-") and cookie not in sender_id(cookie)

    with_gateway(live_bot.url, scenario)


def test_one_sender_sending_too_fast_is_slowed_down_with_a_french_message():
    limiter = RateLimiter(per_minute=60, burst=3)
    assert [limiter.allow("a", now=0.0) for _ in range(4)] == [True, True, True, False]
    assert limiter.allow("b", now=0.0)  # another sender is not affected
    assert limiter.allow("a", now=1.0)  # one message a second comes back
    assert not limiter.allow("a", now=1.0)

    async def scenario(client: TestClient) -> None:
        replies = [await client.post("/api/chat", json={"message": "bonjour"}) for _ in range(12)]
        assert replies[-1].status == 429
        assert "patientez" in (await replies[-1].json())["error"]

    with_gateway(f"http://127.0.0.1:{free_port()}", scenario)
