"""The web gateway: the chat page, its API, and the errors a browser can cause."""

from __future__ import annotations

import asyncio
import re
import tempfile
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.fernet import Fernet

from bot.config import REPO_ROOT
from bot.db import create_schema
from bot.gateway.app import FOREIGN_SITE, MAX_MESSAGE_CHARS, allowed_origins, create_app, sender_id
from bot.gateway.limits import RateLimiter
from bot.local_stack import free_port
from bot.personal_data.redaction import EMAIL_LOCAL_PLACEHOLDER, PLACEHOLDERS
from bot.personal_data.vault import Vault

Scenario = Callable[[TestClient], Awaitable[None]]


def with_gateway(rasa_url: str, scenario: Scenario) -> None:
    async def main() -> None:
        with tempfile.TemporaryDirectory() as folder:
            vault = Vault(create_schema(f"sqlite:///{folder}/vault.db"), Fernet.generate_key())
            async with TestClient(TestServer(create_app(rasa_url, vault=vault))) as client:
                await scenario(client)

    asyncio.run(main())


def test_the_demo_page_is_french_and_embeds_the_widget_with_one_script_tag():
    async def scenario(client: TestClient) -> None:
        page = await client.get("/")
        html = await page.text()
        assert page.status == 200
        assert '<html lang="fr">' in html
        assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/widget.js" defer>']
        assert not re.search(r'(?:src|href)="(?:https?:)?//', html)  # nothing from outside
        for asset in ("/static/widget.js", "/static/widget.css", "/static/demo.css"):
            assert (await client.get(asset)).status == 200, asset
        widget = await (await client.get("/static/widget.js")).text()
        for unsafe in (".innerHTML", ".outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert unsafe not in widget, unsafe

    with_gateway(f"http://127.0.0.1:{free_port()}", scenario)


def test_the_widget_knows_the_length_limit_and_every_mask_of_the_redaction():
    widget = (REPO_ROOT / "bot" / "gateway" / "static" / "widget.js").read_text()
    assert f"const MAX = {MAX_MESSAGE_CHARS};" in widget
    for placeholder in [*PLACEHOLDERS.values(), EMAIL_LOCAL_PLACEHOLDER]:
        assert f"/{placeholder}" in widget, f"{placeholder} is shown raw in the history"


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


# --- The widget embedded on other sites: CORS for the listed origins, the cookie cross-site.

EMBEDDING_SITE = "https://www.ac-lyon.fr"


def test_only_the_listed_sites_may_use_the_chat_api_from_another_origin(monkeypatch):
    monkeypatch.setenv("GATEWAY_ALLOWED_ORIGINS", f" {EMBEDDING_SITE}/ , https://intranet.example")

    async def scenario(client: TestClient) -> None:
        allowed = {"Origin": EMBEDDING_SITE}
        other = {"Origin": "https://pirate.example"}
        preflight = {"Access-Control-Request-Method": "POST"}
        ok = await client.options("/api/chat", headers={**allowed, **preflight})
        assert ok.status == 204
        assert ok.headers["Access-Control-Allow-Origin"] == EMBEDDING_SITE
        assert ok.headers["Access-Control-Allow-Credentials"] == "true"
        assert "POST" in ok.headers["Access-Control-Allow-Methods"]
        assert "Content-Type" in ok.headers["Access-Control-Allow-Headers"]
        refused = await client.options("/api/chat", headers={**other, **preflight})
        assert refused.status == 403 and "Access-Control-Allow-Origin" not in refused.headers

        reply = await client.post("/api/chat", json={"message": "bonjour"}, headers=allowed)
        assert reply.status == 503  # Rasa is not running: the error is readable by the widget
        assert reply.headers["Access-Control-Allow-Origin"] == EMBEDDING_SITE
        assert "Origin" in reply.headers.getall("Vary")
        forged = await client.post("/api/chat", json={"message": "bonjour"}, headers=other)
        assert forged.status == 403 and (await forged.json())["error"] == FOREIGN_SITE
        health = await client.get("/health", headers=allowed)
        assert health.headers["Access-Control-Allow-Origin"] == EMBEDDING_SITE
        page = await client.get("/api/history", headers=other)
        assert "Access-Control-Allow-Origin" not in page.headers  # the browser will not read it

    with_gateway(f"http://127.0.0.1:{free_port()}", scenario)


def test_by_default_no_other_site_may_embed_the_widget(monkeypatch):
    monkeypatch.delenv("GATEWAY_ALLOWED_ORIGINS", raising=False)

    async def scenario(client: TestClient) -> None:
        site = {"Origin": EMBEDDING_SITE}
        forged = await client.post("/api/chat", json={"message": "bonjour"}, headers=site)
        assert forged.status == 403
        own = {"Origin": str(client.make_url("")).rstrip("/")}
        same_origin = await client.post("/api/chat", json={"message": "bonjour"}, headers=own)
        assert same_origin.status == 503  # accepted, relayed (Rasa is down)

    with_gateway(f"http://127.0.0.1:{free_port()}", scenario)
    assert allowed_origins("") == frozenset()
    for wrong in ("*", "www.ac-lyon.fr", "https://www.ac-lyon.fr/page"):
        with pytest.raises(ValueError, match="GATEWAY_ALLOWED_ORIGINS"):
            allowed_origins(wrong)


def test_the_session_cookie_is_strict_at_home_and_crosses_sites_only_over_https(monkeypatch):
    monkeypatch.setenv("GATEWAY_ALLOWED_ORIGINS", EMBEDDING_SITE)

    async def cookie(client: TestClient, **headers: str) -> str:
        client.session.cookie_jar.clear()
        reply = await client.get("/api/history", headers=headers)
        return reply.headers["Set-Cookie"]

    async def scenario(client: TestClient) -> None:
        home = await cookie(client)
        assert "SameSite=Strict" in home and "HttpOnly" in home and "Secure" not in home
        home_https = await cookie(client, **{"X-Forwarded-Proto": "https"})
        assert "SameSite=Strict" in home_https and "Secure" in home_https
        embedded = await cookie(client, Origin=EMBEDDING_SITE, **{"X-Forwarded-Proto": "https"})
        for attribute in ("SameSite=None", "Secure", "HttpOnly", "Partitioned", "Path=/"):
            assert attribute in embedded, attribute
        embedded_http = await cookie(client, Origin=EMBEDDING_SITE)
        assert "SameSite=Strict" in embedded_http  # no SameSite=None without https

    with_gateway(f"http://127.0.0.1:{free_port()}", scenario)


def test_a_typed_intent_is_text_unless_it_is_an_offered_button():
    """Typing "/intent{...}" cannot steer Rasa; clicking a button the bot offered can."""
    received: list[str] = []

    async def fake_rasa(request: web.Request) -> web.Response:
        received.append((await request.json())["message"])
        button = {"title": "Lille", "payload": '/inform{"academie":"Lille"}'}
        return web.json_response({"messages": [{"text": "Quelle académie ?", "buttons": [button]}]})

    async def main() -> None:
        rasa = web.Application()
        rasa.router.add_post("/webhooks/gateway/webhook", fake_rasa)
        async with TestServer(rasa) as server:

            async def scenario(client: TestClient) -> None:
                for message in (
                    '/results{"academie":"Paris"}',
                    "webmail",
                    '/inform{"academie":"Lille"}',
                ):
                    assert (await client.post("/api/chat", json={"message": message})).status == 200

            await asyncio.to_thread(with_gateway, str(server.make_url("")), scenario)

    asyncio.run(main())
    assert received == ['results{"academie":"Paris"}', "webmail", '/inform{"academie":"Lille"}']


def test_the_gateway_command_serves_the_channels_only_when_configured(live_bot):
    """`python -m bot.gateway` (what ./scripts/run starts) wires Telegram and Slack."""
    import subprocess
    import sys

    import requests

    from bot.local_stack import wait_for

    off = requests.post(f"{live_bot.gateway_url}/webhooks/telegram", json={}, timeout=10)
    assert off.status_code == 404  # no token in the test stack: the channel is off
    port = free_port()
    env = {
        **live_bot.env,
        "LOG_SERVICE": "channels-gateway",  # its own log file (one writer per rotated file)
        "TELEGRAM_BOT_TOKEN": "123:abc",
        "TELEGRAM_WEBHOOK_SECRET": "un-secret",
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "secret",
    }
    gateway = subprocess.Popen(
        [sys.executable, "-m", "bot.gateway", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{port}/health", gateway, timeout=60)
        telegram = requests.post(f"http://127.0.0.1:{port}/webhooks/telegram", json={}, timeout=10)
        slack = requests.post(f"http://127.0.0.1:{port}/webhooks/slack/events", json={}, timeout=10)
        assert telegram.status_code == 401 and slack.status_code == 401  # on, and unsigned
    finally:
        gateway.terminate()
        gateway.wait(timeout=20)


# --- Shared computers: cookies the gateway issued only, clearing, no cache, idle sessions.


def with_fake_rasa(scenario: Callable[[TestClient, list[dict], Vault], Awaitable[None]]) -> None:
    """The gateway in front of a fake Rasa that echoes each message and records the calls."""
    received: list[dict] = []

    async def fake_rasa(request: web.Request) -> web.Response:
        body = await request.json()
        received.append(body)
        return web.json_response({"messages": [{"text": f"Bien reçu : {body['message']}"}]})

    async def main() -> None:
        rasa = web.Application()
        rasa.router.add_post("/webhooks/gateway/webhook", fake_rasa)
        with tempfile.TemporaryDirectory() as folder:
            vault = Vault(create_schema(f"sqlite:///{folder}/bot.db"), Fernet.generate_key())
            async with TestServer(rasa) as server:
                app = create_app(str(server.make_url("")), vault=vault)
                async with TestClient(TestServer(app)) as client:
                    await scenario(client, received, vault)

    asyncio.run(main())


def _cookie(client: TestClient) -> str:
    return client.session.cookie_jar.filter_cookies(client.make_url("/"))["sid"].value


async def _history_with(client: TestClient, cookie: str) -> tuple[list[dict], str | None]:
    client.session.cookie_jar.clear()
    reply = await client.get("/api/history", headers={"Cookie": f"sid={cookie}"})
    new = reply.cookies.get("sid")
    return (await reply.json())["messages"], new.value if new else None


def test_a_forged_or_unknown_session_cookie_gets_a_fresh_conversation_never_another():
    async def scenario(client: TestClient, received: list[dict], vault: Vault) -> None:
        await client.post("/api/chat", json={"message": "webmail Lille"})
        issued = _cookie(client)
        shown, renewed = await _history_with(client, issued)
        assert [m["text"] for m in shown][:1] == ["webmail Lille"] and renewed is None
        random_part, signature = issued.split(".")
        flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
        forged = [
            f"{random_part}.{flipped}",  # a signature the gateway did not make
            random_part,  # the old format: 43 random characters, unsigned
            f"{random_part}.",
            "x" * 43,
        ]
        for cookie in forged:
            shown, renewed = await _history_with(client, cookie)
            assert shown == [] and renewed and renewed != cookie, cookie
        # A forged cookie's message goes into a new conversation, not the signed one's.
        client.session.cookie_jar.clear()
        await client.post(
            "/api/chat", json={"message": "bonjour"}, headers={"Cookie": f"sid={forged[0]}"}
        )
        assert received[-1]["sender"] not in (sender_id(issued), sender_id(forged[0]))

    with_fake_rasa(scenario)


def test_the_history_is_never_cached():
    async def scenario(client: TestClient, received: list[dict], vault: Vault) -> None:
        for reply in (
            await client.get("/api/history"),
            await client.post("/api/chat", json={"message": "bonjour"}),
            await client.get("/api/history?after=0"),
        ):
            assert reply.headers["Cache-Control"] == "no-store"

    with_fake_rasa(scenario)


def test_clearing_the_conversation_ends_it_forgets_its_values_and_its_cookie():
    async def scenario(client: TestClient, received: list[dict], vault: Vault) -> None:
        await client.post("/api/chat", json={"message": "mon NUMEN est 01E9501234ABC"})
        cookie = _cookie(client)
        sender = sender_id(cookie)
        assert vault.get(sender, "numen") == "01E9501234ABC"
        cleared = await client.post("/api/forget")
        assert cleared.status == 200 and cleared.headers["Cache-Control"] == "no-store"
        assert 'sid=""' in cleared.headers["Set-Cookie"]
        assert "Max-Age=0" in cleared.headers["Set-Cookie"]
        assert vault.get(sender, "numen") is None
        assert received[-1] == {"sender": sender, "message": "/session_start"}  # Rasa: new session
        # The browser's copy is gone; a copy kept elsewhere is refused: a new conversation.
        assert "sid" not in client.session.cookie_jar.filter_cookies(client.make_url("/"))
        shown, renewed = await _history_with(client, cookie)
        assert shown == [] and renewed and renewed != cookie
        # Clearing without a conversation is harmless.
        client.session.cookie_jar.clear()
        assert (await client.post("/api/forget")).status == 200

    with_fake_rasa(scenario)


def test_a_conversation_idle_longer_than_the_session_expiry_is_not_shown_again():
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from bot.config import session_expiration_minutes
    from bot.support import models

    async def scenario(client: TestClient, received: list[dict], vault: Vault) -> None:
        await client.post("/api/chat", json={"message": "webmail Lille"})
        idle = timedelta(minutes=session_expiration_minutes() + 1)
        with Session(vault.engine, future=True) as session, session.begin():
            for turn in session.scalars(select(models.Turn)):
                turn.at -= idle  # as if the voter had left the computer that long ago
        assert (await (await client.get("/api/history")).json())["messages"] == []
        # Back after the pause: only the new session is shown.
        await client.post("/api/chat", json={"message": "webmail Nantes"})
        shown = (await (await client.get("/api/history")).json())["messages"]
        assert [m["text"] for m in shown] == ["webmail Nantes", "Bien reçu : webmail Nantes"]

    with_fake_rasa(scenario)
