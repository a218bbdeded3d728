"""The Telegram channel: updates reach the assistant through the gateway, answers come back as
Telegram HTML messages, and nothing unauthenticated, malformed or repeated gets through.

Telegram's Bot API is a fake on loopback that records every call; Rasa is a small fake REST
channel, except in the end-to-end test, which talks to the real assistant.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.fernet import Fernet

from bot.channels.telegram import (
    BUTTON_EXPIRED,
    EDITED,
    PRIVATE_ONLY,
    ROUTE,
    SECRET_HEADER,
    TELEGRAM,
    TEXT_ONLY,
    BotApiError,
    ButtonIds,
    TelegramConfigError,
    TelegramSettings,
    delete_webhook,
    set_webhook,
    setup_telegram,
    split_text,
    telegram_html,
)
from bot.db import create_schema, make_engine
from bot.gateway.app import create_app
from bot.gateway.state import MemoryState
from bot.local_stack import free_port
from bot.personal_data.vault import Vault

TOKEN = "123456789:AAE-fake-token-for-tests"
SECRET = "tests_webhook-secret_0123456789"
CHAT = 555000111
RasaAnswer = Callable[[str], list[dict[str, Any]]]


class FakeBotApi:
    """Telegram's Bot API as far as the channel uses it: records every call and answers ok,
    or fails the methods listed in `failing` as Telegram does."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.failing: set[str] = set()
        self.floods = 0  # how many next calls get "429 Too Many Requests, retry after 0 s"

    async def method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != TOKEN:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}
            )
        name, body = request.match_info["method"], await request.json()
        self.calls.append((name, body))
        if self.floods:
            self.floods -= 1
            flood = {"ok": False, "error_code": 429, "parameters": {"retry_after": 0}}
            return web.json_response(flood, status=429)
        if name in self.failing:
            failure = {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
            return web.json_response(failure, status=400)
        result: Any = True
        if name == "sendMessage":
            result = {"message_id": len(self.calls), "chat": {"id": body["chat_id"]}, "date": 0}
        return web.json_response({"ok": True, "result": result})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self.method)
        return app

    def sent(self, method: str = "sendMessage") -> list[dict[str, Any]]:
        return [body for name, body in self.calls if name == method]


@dataclass
class FakeRasa:
    """Rasa's REST channel, answering `answer(message)`, recording what it received."""

    answer: RasaAnswer = lambda message: [{"text": "Bonjour !"}]
    status: int = 200
    delay: float = 0.0
    received: list[dict[str, Any]] = field(default_factory=list)

    async def webhook(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.received.append(body)
        await asyncio.sleep(self.delay)
        return web.json_response({"messages": self.answer(body["message"])}, status=self.status)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/webhooks/gateway/webhook", self.webhook)
        return app


@dataclass
class Stack:
    gateway: TestClient
    api: FakeBotApi
    settings: TelegramSettings
    vault: Vault

    async def deliver(self, update: Any, secret: str | None = SECRET) -> int:
        """POST an update as Telegram does; waits until its answers are sent."""
        headers = {} if secret is None else {SECRET_HEADER: secret}
        reply = await self.gateway.post(ROUTE, json=update, headers=headers)
        await self.gateway.app[TELEGRAM].wait_idle()
        return reply.status

    def replies(self) -> list[str]:
        return [body["text"] for body in self.api.sent()]


@asynccontextmanager
async def fake_bot_api() -> AsyncIterator[tuple[FakeBotApi, TelegramSettings]]:
    api = FakeBotApi()
    async with TestServer(api.app()) as server:
        settings = TelegramSettings(
            bot_token=TOKEN,
            api_url=str(server.make_url("")).rstrip("/"),
            webhook_secret=SECRET,
            public_url="https://assistant.example.fr",
        )
        yield api, settings


@asynccontextmanager
async def telegram_stack(rasa: FakeRasa | None = None, rasa_url: str = "") -> AsyncIterator[Stack]:
    """The fake Bot API, Rasa (a fake one, or the one at `rasa_url`), and the gateway."""
    rasa = rasa or FakeRasa()
    async with fake_bot_api() as (api, settings), TestServer(rasa.app()) as rasa_server:
        with tempfile.TemporaryDirectory() as folder:
            vault = Vault(create_schema(f"sqlite:///{folder}/vault.db"), Fernet.generate_key())
            app = create_app(rasa_url or str(rasa_server.make_url("")), vault=vault)
            setup_telegram(app, settings)
            async with TestClient(TestServer(app)) as gateway:
                yield Stack(gateway, api, settings, vault)


def run(scenario: Callable[[Stack], Any], rasa: FakeRasa | None = None, rasa_url: str = ""):
    async def main() -> None:
        async with telegram_stack(rasa, rasa_url) as stack:
            await scenario(stack)

    asyncio.run(main())


PERSON = {"id": CHAT, "is_bot": False, "first_name": "Camille", "language_code": "fr"}
PRIVATE = {"id": CHAT, "first_name": "Camille", "type": "private"}


def message_update(update_id: int, chat: dict[str, Any] = PRIVATE, **content: Any) -> dict:
    """A `message` Update as Telegram sends it (text, sticker, photo... in `content`)."""
    message = {"message_id": 40 + update_id, "from": PERSON, "chat": chat, "date": 1543579200}
    return {"update_id": update_id, "message": {**message, **content}}


def text_update(update_id: int, text: str, chat: dict[str, Any] = PRIVATE) -> dict:
    return message_update(update_id, chat, text=text)


def button_update(update_id: int, callback_data: str, chat: dict[str, Any] = PRIVATE) -> dict:
    """A `callback_query` Update: the user pressed a button of one of our messages."""
    ours = {"message_id": 41, "from": {"id": 123456789, "is_bot": True}, "chat": chat}
    query = {
        "id": f"4382bfdwdsb323b2d9-{update_id}",
        "from": PERSON,
        "message": {**ours, "date": 1543579201, "text": "Quelle académie ?"},
        "chat_instance": "-8254632870021987543",
        "data": callback_data,
    }
    return {"update_id": update_id, "callback_query": query}


def our_log(caplog: pytest.LogCaptureFixture) -> str:
    """What the gateway logged (the fake servers' access logs show the token in their paths)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("bot."))


def keyboard(body: dict[str, Any]) -> list[dict[str, str]]:
    return [key for row in body["reply_markup"]["inline_keyboard"] for key in row]


ACADEMIES = [
    {"title": name, "payload": "/inform" + json.dumps({"academie": name}, ensure_ascii=False)}
    for name in ("Aix-Marseille", "Créteil", "Nantes")
]


def webmail_answers(message: str) -> list[dict[str, Any]]:
    if message.startswith("/inform"):
        name = json.loads(message.removeprefix("/inform"))["academie"]
        return [{"text": f"**{name}** : messagerie professionnelle **webmel.ac-exemple.fr**"}]
    return [{"text": "De quelle **académie** dépendez-vous ?", "buttons": ACADEMIES}]


def test_a_text_message_is_answered_in_the_same_chat_in_telegram_html():
    answer = "**Créteil** : messagerie **webmel.ac-creteil.fr**\nÀ savoir :\n- un point\n- l'autre"
    rasa = FakeRasa(lambda message: [{"text": answer}])

    async def scenario(stack: Stack) -> None:
        assert await stack.deliver(text_update(1, "webmail Créteil")) == 200
        assert rasa.received == [{"sender": f"tg-{CHAT}", "message": "webmail Créteil"}]
        [sent] = stack.api.sent()
        assert sent["chat_id"] == CHAT and sent["parse_mode"] == "HTML"
        assert sent["text"] == (
            "<b>Créteil</b> : messagerie <b>webmel.ac-creteil.fr</b>\n"
            "À savoir :\n• un point\n• l'autre"
        )
        assert "**" not in sent["text"] and "reply_markup" not in sent

    run(scenario, rasa)


def test_a_button_press_sends_its_payload_to_rasa_and_answers_the_callback():
    rasa = FakeRasa(webmail_answers)

    async def scenario(stack: Stack) -> None:
        await stack.deliver(text_update(1, "webmail"))
        keys = keyboard(stack.api.sent()[0])
        assert [k["text"] for k in keys] == ["Aix-Marseille", "Créteil", "Nantes"]
        creteil = next(k for k in keys if k["text"] == "Créteil")
        assert await stack.deliver(button_update(2, creteil["callback_data"])) == 200
        assert rasa.received[-1] == {"sender": f"tg-{CHAT}", "message": ACADEMIES[1]["payload"]}
        assert stack.api.sent("answerCallbackQuery") == [
            {"callback_query_id": "4382bfdwdsb323b2d9-2"}
        ]
        assert (
            stack.replies()[-1]
            == "<b>Créteil</b> : messagerie professionnelle <b>webmel.ac-exemple.fr</b>"
        )

    run(scenario, rasa)


def test_short_titles_go_two_by_row_and_long_ones_one_by_row():
    long_titles = [{"title": "Corriger : date de naissance", "payload": "/deny"}] * 3
    rasa = FakeRasa(
        lambda m: [{"text": "Choix", "buttons": ACADEMIES if m == "a" else long_titles}]
    )

    async def scenario(stack: Stack) -> None:
        await stack.deliver(text_update(1, "a"))
        await stack.deliver(text_update(2, "b"))
        short, long = (s["reply_markup"]["inline_keyboard"] for s in stack.api.sent())
        assert [len(row) for row in short] == [2, 1]
        assert [len(row) for row in long] == [1, 1, 1]

    run(scenario, rasa)


def test_callback_data_stays_within_64_bytes_and_carries_no_payload():
    payloads = [
        '/inform{"academie":"Aix-Marseille"}',
        '/correct_value{"field":"birth_date"}',
        '/inform{"categorie":"Personnel d\'éducation et psychologue de l\'Éducation nationale"}',
        "/inform" + json.dumps({"academie": "é" * 200}, ensure_ascii=False),
    ]
    rasa = FakeRasa(
        lambda m: [{"text": "Choix", "buttons": [{"title": "x", "payload": p} for p in payloads]}]
    )

    async def scenario(stack: Stack) -> None:
        await stack.deliver(text_update(1, "catégorie"))
        keys = keyboard(stack.api.sent()[0])
        assert len(keys) == len(payloads)
        for key in keys:
            assert len(key["callback_data"].encode()) <= 64
            assert "inform" not in key["callback_data"] and "field" not in key["callback_data"]
        await stack.deliver(button_update(2, keys[3]["callback_data"]))
        assert rasa.received[-1]["message"] == payloads[3]

    run(scenario, rasa)


def test_a_button_id_only_works_in_the_chat_it_was_sent_to():
    async def scenario() -> None:
        ids = ButtonIds(MemoryState(), ttl=0.2)
        mine = await ids.id_for(1, "/affirm")
        assert await ids.id_for(1, "/affirm") == mine  # the same button keeps its id
        assert await ids.payload_for(1, mine) == "/affirm"
        assert await ids.payload_for(2, mine) is None
        await asyncio.sleep(0.3)
        assert await ids.payload_for(1, mine) is None  # expired

    asyncio.run(scenario())


def test_an_unknown_button_says_it_expired_and_asks_to_type_again():
    rasa = FakeRasa()

    async def scenario(stack: Stack) -> None:
        assert await stack.deliver(button_update(7, "b:0123456789abcdef")) == 200
        assert stack.replies() == [BUTTON_EXPIRED]
        assert "retapez" in BUTTON_EXPIRED
        assert len(stack.api.sent("answerCallbackQuery")) == 1  # the spinner stops anyway
        assert rasa.received == []

    run(scenario, rasa)


def test_updates_without_the_right_secret_are_refused_and_not_processed(caplog):
    caplog.set_level(logging.DEBUG)
    rasa = FakeRasa()

    async def scenario(stack: Stack) -> None:
        assert await stack.deliver(text_update(1, "mon NUMEN 01E9501234ABC"), secret=None) == 401
        assert (
            await stack.deliver(text_update(2, "mon NUMEN 01E9501234ABC"), secret="devine") == 401
        )
        assert await stack.deliver(text_update(3, "bonjour"), secret=SECRET + "x") == 401
        assert await stack.deliver(text_update(4, "bonjour"), secret="é" * 10) == 401
        assert rasa.received == [] and stack.api.calls == []
        # The genuine update 1 is not burnt by the forged one: Telegram's delivery works.
        assert await stack.deliver(text_update(1, "bonjour")) == 200
        assert len(rasa.received) == 1

    run(scenario, rasa)
    assert "secret token" in our_log(caplog)
    assert "01E9501234ABC" not in caplog.text and "NUMEN" not in caplog.text


def test_the_same_update_delivered_twice_is_answered_once():
    rasa = FakeRasa()

    async def scenario(stack: Stack) -> None:
        update = text_update(42, "j'ai perdu mon identifiant")
        assert await stack.deliver(update) == 200
        assert await stack.deliver(update) == 200
        assert len(rasa.received) == 1 and len(stack.api.sent()) == 1

    run(scenario, rasa)


def test_malformed_updates_get_400_never_500():
    rasa = FakeRasa()
    bad_json = [b"{pas du json", b"\xff\xfe{}", b"[" * 50_000, b""]
    wrong_types: list[Any] = [
        ["pas", "un", "objet"],
        {"message": {"text": "sans update_id"}},
        {"update_id": "12", "message": {}},
        {"update_id": True},
        {"update_id": 1, "message": ["liste"]},
        {"update_id": 1, "message": {"chat": {"id": "555", "type": "private"}, "text": "x"}},
        {"update_id": 1, "message": {"chat": {"id": 555, "type": "private"}, "text": 12}},
        {"update_id": 1, "message": {"text": "sans chat"}},
        {"update_id": 1, "callback_query": {"data": "b:00", "message": {"chat": {"id": 1}}}},
        {"update_id": 1, "callback_query": {"id": "q", "data": 5}},
    ]

    async def scenario(stack: Stack) -> None:
        headers = {SECRET_HEADER: SECRET, "Content-Type": "application/json"}
        for body in bad_json:
            reply = await stack.gateway.post(ROUTE, data=body, headers=headers)
            assert reply.status == 400, body[:20]
        for update in wrong_types:
            assert await stack.deliver(update) == 400, update
        huge = await stack.gateway.post(ROUTE, data=b" " * 100_000, headers=headers)
        assert huge.status == 413
        assert rasa.received == [] and stack.api.calls == []

    run(scenario, rasa)


def test_what_is_not_text_gets_a_french_reply_or_nothing():
    rasa = FakeRasa()
    sticker = {"file_id": "CAACAgIAAxkBAAEB", "width": 512, "height": 512, "emoji": "👍"}
    group = {"id": -1001234567890, "title": "Salle des profs", "type": "supergroup"}

    async def scenario(stack: Stack) -> None:
        await stack.deliver(message_update(1, sticker=sticker))
        await stack.deliver(message_update(2, photo=[{"file_id": "AgAD", "width": 90}]))
        assert stack.replies() == [TEXT_ONLY, TEXT_ONLY]
        assert "messages écrits" in TEXT_ONLY
        edited = text_update(3, "webmail Lille")
        edited["edited_message"] = edited.pop("message")
        await stack.deliver(edited)
        assert stack.replies()[-1] == EDITED
        await stack.deliver(text_update(4, "mon NUMEN est 01E9501234ABC", chat=group))
        assert stack.replies()[-1] == PRIVATE_ONLY
        assert stack.api.sent()[-1]["chat_id"] == group["id"]
        await stack.deliver(message_update(5, chat=group, new_chat_members=[PERSON]))
        post = {"message_id": 9, "chat": {"id": -100987, "type": "channel"}, "date": 0, "text": "x"}
        await stack.deliver({"update_id": 6, "channel_post": post})
        assert len(stack.replies()) == 4  # nothing for a group event or a channel post
        assert rasa.received == []

    run(scenario, rasa)


def test_bot_text_reaches_telegram_escaped():
    rasa = FakeRasa(lambda m: [{"text": "<script>alert(1)</script> **ok** & <b>gras</b> **"}])

    async def scenario(stack: Stack) -> None:
        await stack.deliver(text_update(1, "<i>bonjour</i>"))
        assert stack.replies() == [
            "&lt;script&gt;alert(1)&lt;/script&gt; <b>ok</b> &amp; &lt;b&gt;gras&lt;/b&gt; **"
        ]

    run(scenario, rasa)


def test_the_markdown_subset_becomes_telegram_html():
    assert telegram_html("**a** et **b**\n- un\n  - deux") == "<b>a</b> et <b>b</b>\n• un\n  • deux"
    assert telegram_html("**<i>x</i>**") == "<b>&lt;i&gt;x&lt;/i&gt;</b>"
    assert telegram_html("https://webmel.ac-creteil.fr/?a=1&b=2") == (
        "https://webmel.ac-creteil.fr/?a=1&amp;b=2"
    )
    chunks = split_text("ligne\n" * 3000, limit=4000)
    assert all(len(c) <= 4000 for c in chunks) and "".join(chunks).count("ligne") == 3000
    assert split_text("x" * 9000, limit=4000) == ["x" * 4000, "x" * 4000, "x" * 1000]


def test_a_long_answer_is_split_and_its_buttons_come_last():
    rasa = FakeRasa(lambda m: [{"text": "- une ligne\n" * 800, "buttons": ACADEMIES}])

    async def scenario(stack: Stack) -> None:
        await stack.deliver(text_update(1, "tout"))
        sent = stack.api.sent()
        assert len(sent) == 3 and all(len(s["text"]) <= 4096 for s in sent)
        assert ["reply_markup" in s for s in sent] == [False, False, True]

    run(scenario, rasa)


def test_personal_data_typed_on_telegram_never_reaches_rasa():
    rasa = FakeRasa(lambda m: [{"text": "Merci, c'est noté."}])

    async def scenario(stack: Stack) -> None:
        await stack.deliver(text_update(1, "mon NUMEN est 01E9501234ABC"))
        assert rasa.received == [{"sender": f"tg-{CHAT}", "message": "mon NUMEN est NUMEN_MASQUE"}]
        # The value waits in the vault for the action, under the Telegram conversation.
        assert stack.vault.get(f"tg-{CHAT}", "numen") == "01E9501234ABC"

    run(scenario, rasa)


def test_start_greets_the_user():
    rasa = FakeRasa()

    async def scenario(stack: Stack) -> None:
        await stack.deliver(text_update(1, "/start"))
        assert rasa.received[0]["message"] == "/greet"
        assert stack.replies() == ["Bonjour !"]

    run(scenario, rasa)


def test_refusals_and_outages_become_french_replies():
    rasa = FakeRasa(status=500)

    async def scenario(stack: Stack) -> None:
        await stack.deliver(text_update(1, "bonjour"))
        assert "momentanément indisponible" in stack.replies()[-1]
        await stack.deliver(text_update(2, "x" * 2001))
        assert "trop long" in stack.replies()[-1]
        for update_id in range(3, 16):
            await stack.deliver(text_update(update_id, "bonjour"))
        assert "patientez" in stack.replies()[-1]

    run(scenario, rasa)


def test_bot_api_failures_are_logged_without_text_or_token(caplog):
    caplog.set_level(logging.DEBUG)
    rasa = FakeRasa(lambda m: [{"text": "Votre NUMEN_MASQUE est bien reçu."}])

    async def scenario(stack: Stack) -> None:
        stack.api.failing.add("sendMessage")
        assert await stack.deliver(text_update(1, "bonjour")) == 200

    run(scenario, rasa)
    logged = our_log(caplog)
    assert "sendMessage" in logged and "chat not found" in logged
    assert "NUMEN" not in logged and TOKEN not in logged


def test_flood_control_is_waited_out_once():
    async def scenario(stack: Stack) -> None:
        stack.api.floods = 1
        await stack.deliver(text_update(1, "bonjour"))
        assert [name for name, _ in stack.api.calls] == ["sendMessage", "sendMessage"]
        assert stack.replies() == ["Bonjour !", "Bonjour !"]  # refused once, then delivered

    run(scenario)


def test_an_unreachable_bot_api_is_reported_without_the_token():

    async def scenario() -> None:
        async with fake_bot_api() as (_, settings):
            pass  # the fake API is stopped: its port no longer answers
        with pytest.raises(BotApiError) as refused:
            await set_webhook(settings)
        assert "injoignable" in str(refused.value) and TOKEN not in str(refused.value)

    asyncio.run(scenario())


def test_shutdown_waits_for_updates_in_progress():
    rasa = FakeRasa(delay=0.3)

    async def scenario() -> None:
        async with fake_bot_api() as (api, settings), TestServer(rasa.app()) as rasa_server:
            with tempfile.TemporaryDirectory() as folder:
                vault = Vault(create_schema(f"sqlite:///{folder}/vault.db"), Fernet.generate_key())
                app = create_app(str(rasa_server.make_url("")), vault=vault)
                setup_telegram(app, settings)
                async with TestClient(TestServer(app)) as gateway:
                    reply = await gateway.post(
                        ROUTE, json=text_update(1, "bonjour"), headers={SECRET_HEADER: SECRET}
                    )
                    assert reply.status == 200 and api.sent() == []  # answered before the work
            assert [s["text"] for s in api.sent()] == ["Bonjour !"]  # done before shutdown

    asyncio.run(scenario())


def test_without_a_token_the_channel_is_off_and_with_one_it_needs_a_secret():
    off = TelegramSettings.from_env({})
    assert not off.enabled and off.api_url == "https://api.telegram.org"
    with pytest.raises(TelegramConfigError, match="TELEGRAM_WEBHOOK_SECRET"):
        TelegramSettings.from_env({"TELEGRAM_BOT_TOKEN": TOKEN})
    with pytest.raises(TelegramConfigError):
        TelegramSettings.from_env({"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_SECRET": "a b"})
    on = TelegramSettings.from_env(
        {
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TELEGRAM_API_URL": "http://127.0.0.1:8081/",
            "TELEGRAM_PUBLIC_URL": "https://assistant.example.fr/",
        }
    )
    assert on.enabled and on.method_url("getMe") == f"http://127.0.0.1:8081/bot{TOKEN}/getMe"
    assert on.public_url == "https://assistant.example.fr"
    assert TOKEN not in repr(on) and SECRET not in repr(on)

    async def scenario() -> None:
        app = create_app(
            f"http://127.0.0.1:{free_port()}",
            vault=Vault(make_engine("sqlite://"), Fernet.generate_key()),
        )
        setup_telegram(app, on)
        setup_telegram(app, off)  # set up twice (by create_app, then here): the last one wins
        async with TestClient(TestServer(app)) as gateway:
            reply = await gateway.post(ROUTE, json=text_update(1, "bonjour"))
            assert reply.status == 404

    asyncio.run(scenario())


def test_set_webhook_registers_the_public_url_with_the_secret():
    async def scenario() -> None:
        async with fake_bot_api() as (api, settings):
            said = await set_webhook(settings)
            assert api.calls == [
                (
                    "setWebhook",
                    {
                        "url": "https://assistant.example.fr/webhooks/telegram",
                        "secret_token": SECRET,
                        "allowed_updates": ["message", "callback_query"],
                        "drop_pending_updates": False,
                    },
                )
            ]
            assert "enregistré" in said and "https://assistant.example.fr/webhooks/telegram" in said
            assert "supprimé" in await delete_webhook(settings)
            assert api.calls[-1][0] == "deleteWebhook"
            api.failing.add("setWebhook")
            with pytest.raises(BotApiError, match="chat not found"):
                await set_webhook(settings)
            plain_http = TelegramSettings(TOKEN, settings.api_url, SECRET, "http://exemple.fr")
            with pytest.raises(TelegramConfigError, match="https"):
                await set_webhook(plain_http)

    asyncio.run(scenario())


def test_a_telegram_conversation_with_the_real_assistant(live_bot):
    async def say(stack: Stack, update: dict) -> list[dict[str, Any]]:
        """The sendMessage calls one update caused."""
        before = len(stack.api.sent())
        assert await stack.deliver(update) == 200
        return stack.api.sent()[before:]

    def said(sent: list[dict[str, Any]]) -> str:
        return "\n".join(s["text"] for s in sent)

    async def scenario(stack: Stack) -> None:
        assert "webmel.ac-creteil.fr" in said(await say(stack, text_update(1, "webmail Créteil")))
        aesh = said(await say(stack, text_update(2, "je suis AESH, je vote pour quoi ?")))
        assert "<b>3 scrutins</b>" in aesh and "CCP non tit (AESH)" in aesh
        other = {**PRIVATE, "id": CHAT + 1}  # a new conversation: no académie known yet
        webmail = await say(stack, text_update(3, "webmail", chat=other))
        keys = [key for sent in webmail if "reply_markup" in sent for key in keyboard(sent)]
        nantes = next(key for key in keys if key["text"] == "Nantes")
        assert len(nantes["callback_data"].encode()) <= 64
        pressed = await say(stack, button_update(4, nantes["callback_data"], chat=other))
        assert "webmel.ac-nantes.fr" in said(pressed)
        assert all(sent["chat_id"] == other["id"] for sent in webmail + pressed)
        assert len(stack.api.sent("answerCallbackQuery")) == 1
        assert all("**" not in sent["text"] for sent in stack.api.sent())

    run(scenario, rasa_url=live_bot.url)
