"""Handing a conversation to a human: the queue, the pause of the assistant, the agent's reply
on the user's own channel (widget, Telegram, Slack), and the way back to the assistant."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.fernet import Fernet

from bot.channels.slack import SlackSettings, setup_slack
from bot.channels.telegram import TelegramSettings, setup_telegram
from bot.config import REPO_ROOT
from bot.db import create_schema, make_engine
from bot.gateway.app import create_app, sender_id
from bot.gateway.keys import DESK
from bot.knowledge import Knowledge, load_kb
from bot.personal_data.vault import Vault
from bot.support import models, wording
from bot.support.store import HandoffConflict, SupportStore
from tests.conftest import texts

ASK = "je veux parler à un conseiller"


@dataclass
class FakeRasa:
    """The gateway channel of Rasa: a handoff payload for ASK, an FAQ answer otherwise."""

    received: list[str] = field(default_factory=list)

    def app(self) -> web.Application:
        async def webhook(request: web.Request) -> web.Response:
            message = (await request.json())["message"]
            self.received.append(message)
            if message == ASK:
                return web.json_response(
                    {
                        "messages": [{"recipient_id": "x", "custom": {"handoff": "demande"}}],
                        "nlu": {"intent": "ask_human", "confidence": 0.97},
                    }
                )
            return web.json_response(
                {
                    "messages": [{"text": "Le vote a lieu du 29 novembre au 6 décembre."}],
                    "nlu": {"intent": "voting_dates", "confidence": 0.91},
                }
            )

        app = web.Application()
        app.router.add_post("/webhooks/gateway/webhook", webhook)
        return app


@dataclass
class Desk:
    client: TestClient
    app: web.Application
    rasa: FakeRasa
    store: SupportStore
    agent_id: int
    calls: list[dict]

    async def say(self, text: str) -> dict:
        reply = await self.client.post("/api/chat", json={"message": text})
        assert reply.status == 200, await reply.text()
        return await reply.json()

    async def history(self, after: int = 0) -> dict:
        return await (await self.client.get(f"/api/history?after={after}")).json()

    def web_sender(self) -> str:
        cookies = self.client.session.cookie_jar.filter_cookies(self.client.make_url("/"))
        return sender_id(cookies["sid"].value)


def add_agent(store: SupportStore, login: str = "camille", online: bool = True) -> int:
    from sqlalchemy.orm import Session

    with Session(store.engine) as session, session.begin():
        agent = models.Agent(
            login=login,
            display_name="Camille",
            password_hash="-",
            role="agent",
            last_seen_at=models.utcnow() if online else models.utcnow() - timedelta(hours=1),
        )
        session.add(agent)
        session.flush()
        return agent.id


@asynccontextmanager
async def desk(online: bool = True) -> AsyncIterator[Desk]:
    rasa = FakeRasa()
    calls: list[dict] = []

    async def platform(request: web.Request) -> web.Response:
        calls.append({"path": request.path, "json": await request.json()})
        return web.json_response({"ok": True, "result": {}})

    platform_app = web.Application()
    platform_app.router.add_post("/{tail:.*}", platform)
    with tempfile.TemporaryDirectory() as folder:
        engine = create_schema(f"sqlite:///{folder}/bot.db")
        load_kb(engine, REPO_ROOT / "kb" / "faq_fr.md")
        vault = Vault(engine, Fernet.generate_key())
        async with TestServer(rasa.app()) as rasa_server, TestServer(platform_app) as fake:
            app = create_app(str(rasa_server.make_url("")), vault=vault)
            root = str(fake.make_url("")).rstrip("/")
            setup_telegram(
                app, TelegramSettings(bot_token="1:x", api_url=root, webhook_secret="s" * 32)
            )
            setup_slack(app, SlackSettings("xoxb-test", "secret", f"{root}/api"))
            store = app[DESK].store
            agent_id = add_agent(store, online=online)
            async with TestClient(TestServer(app)) as client:
                yield Desk(client, app, rasa, store, agent_id, calls)


def run(scenario) -> None:
    asyncio.run(scenario())


def test_asking_for_a_person_pauses_the_assistant_and_queues_the_conversation():
    async def scenario() -> None:
        async with desk() as d:
            first = await d.say("c'est quand le vote ?")
            assert first["state"] == "bot"
            answer = await d.say(ASK)
            assert answer["state"] == "waiting"
            assert wording.WAITING_ONLINE in texts(answer["messages"])
            [queued] = d.store.queue()
            assert (queued.conversation_id, queued.reason, queued.channel) == (
                d.web_sender(),
                "demande",
                "web",
            )
            # While waiting, messages go to the agent's transcript, not to the assistant.
            waiting = await d.say("mon adresse ne marche pas")
            assert d.rasa.received == ["c'est quand le vote ?", ASK]
            assert waiting["messages"][0]["text"] == wording.STILL_WAITING
            transcript = d.store.transcript(d.web_sender())
            assert [(t.role, t.intent) for t in transcript if t.role == "user"] == [
                ("user", "voting_dates"),
                ("user", "ask_human"),
                ("user", None),
            ]
            assert transcript[0].confidence == pytest.approx(0.91)

    run(scenario)


def test_with_nobody_online_the_user_is_told_and_given_the_assistance_academique_path():
    async def scenario() -> None:
        async with desk(online=False) as d:
            answer = await d.say(ASK)
            said = texts(answer["messages"])
            assert wording.WAITING_NOBODY in said
            # The path comes from the knowledge base's `ask_human` answer.
            knowledge = Knowledge(d.store.engine)
            assert knowledge.answer("ask_human").text.split("\n\n")[-1] in said
            assert len(d.store.queue()) == 1  # the request waits in the queue

    run(scenario)


def test_an_agent_takes_over_replies_on_the_widget_and_hands_back():
    async def scenario() -> None:
        async with desk() as d:
            asked = await d.say(ASK)
            [handoff] = d.store.queue()
            await d.app[DESK].take(handoff.id, d.agent_id)
            assert (await d.history(asked["last"]))["state"] == "agent"
            await d.app[DESK].reply(d.web_sender(), d.agent_id, "Rappelez le 06 12 34 56 78.")
            news = await d.history(asked["last"])
            agent_turns = [m for m in news["messages"] if m["sender"] == "agent"]
            assert agent_turns == [
                {
                    "id": agent_turns[0]["id"],
                    "sender": "agent",
                    "text": "Rappelez le TELEPHONE_MASQUE.",  # stored redacted
                    "agent": "Camille",
                }
            ]
            assert "Camille" in texts(news["messages"])  # « Camille … a repris la conversation »
            # While the agent answers, the user's messages get no automatic answer.
            quiet = await d.say("merci, je regarde")
            assert quiet["messages"] == [] and quiet["state"] == "agent"
            await d.app[DESK].release(handoff.id, d.agent_id)
            back = await d.history(news["last"])
            assert back["state"] == "bot"
            assert wording.RELEASED in texts(back["messages"])
            again = await d.say("c'est quand le vote ?")
            assert again["state"] == "bot" and "novembre" in texts(again["messages"])
            assert d.rasa.received[-1] == "c'est quand le vote ?"

    run(scenario)


def test_a_second_agent_cannot_take_a_conversation_already_taken():
    async def scenario() -> None:
        async with desk() as d:
            await d.say(ASK)
            [handoff] = d.store.queue()
            other = add_agent(d.store, "dominique")
            await d.app[DESK].take(handoff.id, d.agent_id)
            with pytest.raises(HandoffConflict):
                await d.app[DESK].take(handoff.id, other)
            with pytest.raises(HandoffConflict):
                await d.app[DESK].release(handoff.id, other)

    run(scenario)


def test_the_user_can_go_back_to_the_assistant_while_waiting():
    async def scenario() -> None:
        async with desk() as d:
            await d.say(ASK)
            left = await d.say("Revenir à l’assistant")
            assert left["state"] == "bot"
            assert texts(left["messages"]) == wording.BACK_TO_BOT
            assert d.store.queue() == []
            assert (await d.say("c'est quand le vote ?"))["state"] == "bot"
            assert d.rasa.received[-1] == "c'est quand le vote ?"

    run(scenario)


def test_the_agents_reply_reaches_a_telegram_user_in_their_chat():
    async def scenario() -> None:
        async with desk() as d:
            update = {
                "update_id": 7,
                "message": {
                    "message_id": 1,
                    "date": 0,
                    "chat": {"id": 4242, "type": "private"},
                    "from": {"id": 4242, "is_bot": False, "first_name": "A"},
                    "text": ASK,
                },
            }
            reply = await d.client.post(
                "/webhooks/telegram",
                json=update,
                headers={"X-Telegram-Bot-Api-Secret-Token": "s" * 32},
            )
            assert reply.status == 200
            from bot.channels.telegram import TELEGRAM

            await d.app[TELEGRAM].wait_idle()
            [handoff] = d.store.queue()
            assert handoff.conversation_id == "tg-4242" and handoff.channel == "telegram"
            await d.app[DESK].take(handoff.id, d.agent_id)
            await d.app[DESK].reply("tg-4242", d.agent_id, "Bonjour, je regarde votre dossier.")
            sent = [c["json"] for c in d.calls if c["path"].endswith("/sendMessage")]
            assert [s["chat_id"] for s in sent][-2:] == [4242, 4242]
            assert sent[-1]["text"] == "Bonjour, je regarde votre dossier."
            assert "Camille" in sent[-2]["text"]

    run(scenario)


def test_the_agents_reply_reaches_a_slack_user_in_their_direct_messages():
    async def scenario() -> None:
        async with desk() as d:
            d.store.ensure_conversation("slack-T1-U1", "slack", {"channel": "D123"})
            await d.app[DESK].request_handoff("slack-T1-U1", "demande")
            [handoff] = d.store.queue()
            await d.app[DESK].take(handoff.id, d.agent_id)
            await d.app[DESK].reply("slack-T1-U1", d.agent_id, "Je m'en occupe.")
            posts = [c["json"] for c in d.calls if c["path"].endswith("/chat.postMessage")]
            assert [p["channel"] for p in posts] == ["D123", "D123"]
            assert posts[-1]["text"] == "Je m'en occupe."

    run(scenario)


# --- With the real assistant ------------------------------------------------------------------


def chat(live_bot, voter: str, text: str) -> dict:
    import requests

    session = live_bot._voters.setdefault(voter, requests.Session())
    reply = session.post(f"{live_bot.gateway_url}/api/chat", json={"message": text}, timeout=30)
    reply.raise_for_status()
    return reply.json()


@pytest.mark.live
def test_the_real_assistant_hands_over_when_asked_and_after_repeated_misunderstanding(live_bot):
    asked = chat(live_bot, "handoff-asked", ASK)
    assert asked["state"] == "waiting"
    assert "conseiller" in texts(asked["messages"])
    assert chat(live_bot, "handoff-asked", "vous êtes là ?")["state"] == "waiting"

    confused = [chat(live_bot, "handoff-confused", "blorp zanquette frimousse") for _ in range(3)]
    assert [c["state"] for c in confused] == ["bot", "bot", "waiting"]
    assert wording.MISUNDERSTOOD in texts(confused[-1]["messages"])

    engine = make_engine(live_bot.env["BOT_DATABASE_URL"])
    reasons = [h.reason for h in SupportStore(engine).queue()]
    assert {"demande", "incompris"} <= set(reasons)


@pytest.mark.live
def test_asking_for_a_person_in_the_middle_of_a_chore_ends_the_chore(live_bot):
    voter = "handoff-chore"
    chat(live_bot, voter, "j'ai perdu mon identifiant électeur")
    asked = chat(live_bot, voter, ASK)
    assert asked["state"] == "waiting"
    left = chat(live_bot, voter, "revenir à l'assistant")
    assert left["state"] == "bot"
    # The reissue form is no longer active: a date question gets the dates.
    assert "novembre" in texts(chat(live_bot, voter, "c'est quand le vote ?")["messages"])
