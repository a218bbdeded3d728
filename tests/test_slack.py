"""The Slack channel: signed webhooks in, `chat.postMessage` out, every turn answered once.

Slack itself is replaced by a fake Web API on loopback that records every call; most tests
replace Rasa by a fake REST channel too (the channel is what is tested here), and one goes
through the real assistant.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.fernet import Fernet

from bot.channels.slack import (
    EVENTS_PATH,
    INTERACTIVE_PATH,
    SLACK,
    SlackChannel,
    SlackSettings,
    blocks_for,
    from_slack_text,
    setup_slack,
    to_mrkdwn,
)
from bot.db import create_schema
from bot.gateway.app import create_app
from bot.local_stack import free_port
from bot.personal_data.vault import Vault

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TOKEN = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"
TEAM, USER, BOT_USER, DM = "T061EG9R6", "U061F7AUR", "U0BOT0001", "D0PNCRP9N"
NANTES = '/inform{"academie":"Nantes"}'
CANNED = [
    {
        "text": "Le **webmail** dépend de votre académie.\n\nQuelle est votre académie ?",
        "buttons": [
            {"title": "Créteil", "payload": '/inform{"academie":"Créteil"}'},
            {"title": "Nantes", "payload": NANTES},
        ],
    }
]


# ---------------------------------------------------------------- what Slack sends, signed


def slack_headers(body: bytes, secret: str = SECRET, sent_at: float | None = None) -> dict:
    """The headers Slack adds: `v0=` HMAC-SHA256 of `v0:{timestamp}:{body}`."""
    timestamp = str(int(time.time() if sent_at is None else sent_at))
    base = f"v0:{timestamp}:".encode() + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": f"v0={digest}"}


def dm_event(text: str, event_id: str = "Ev08MFMKH6", user: str = USER, **event: Any) -> dict:
    """An `event_callback` for a direct message, as Slack sends it for `message.im`."""
    return {
        "token": "XXYYZZ",
        "team_id": TEAM,
        "context_team_id": TEAM,
        "api_app_id": "A0KRD7HC3",
        "event": {
            "client_msg_id": "5fd6fb54-3e3c-4c3f-a7a6-2b51c7a0f2c6",
            "type": "message",
            "text": text,
            "user": user,
            "ts": "1700000000.000200",
            "team": TEAM,
            "channel": DM,
            "event_ts": "1700000000.000200",
            "channel_type": "im",
            **event,
        },
        "type": "event_callback",
        "event_id": event_id,
        "event_time": 1700000000,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": TEAM,
                "user_id": BOT_USER,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-eyJldCI6Im1lc3NhZ2UiLCJ0aWQiOiJUMDYxRUc5UjYifQ",
    }


def click_payload(posted: dict, title: str, response_url: str, user: str = USER) -> dict:
    """The `block_actions` payload Slack sends when `user` clicks `title` in a posted message."""
    block, button = next(
        (b, e)
        for b in posted["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["text"]["text"] == title
    )
    message = {
        "type": "message",
        "user": BOT_USER,
        "bot_id": "B0BOT0001",
        "text": posted["text"],
        "blocks": posted["blocks"],
        "ts": "1700000001.000300",
    }
    return {
        "type": "block_actions",
        "user": {"id": user, "username": "claire.martin", "name": "claire.martin", "team_id": TEAM},
        "api_app_id": "A0KRD7HC3",
        "token": "XXYYZZ",
        "container": {
            "type": "message",
            "message_ts": "1700000001.000300",
            "channel_id": DM,
            "is_ephemeral": False,
        },
        "trigger_id": "6011222111.2233445566.5f4e3d2c1b0a",
        "team": {"id": TEAM, "domain": "ac-exemple"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": DM, "name": "directmessage"},
        "message": message,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [
            {
                "action_id": button["action_id"],
                "block_id": block["block_id"],
                "text": button["text"],
                "value": button["value"],
                "type": "button",
                "action_ts": "1700000005.445566",
            }
        ],
    }


# ---------------------------------------------------------------- fakes of Rasa and Slack


@dataclass
class FakeRasa:
    """Rasa's REST channel: records what it receives, answers `answer` after `delay` seconds."""

    answer: list[dict] = field(default_factory=lambda: CANNED)
    delay: float = 0.0
    received: list[dict] = field(default_factory=list)

    def app(self) -> web.Application:
        async def webhook(request: web.Request) -> web.Response:
            self.received.append(await request.json())
            await asyncio.sleep(self.delay)
            return web.json_response({"messages": self.answer})

        app = web.Application()
        app.router.add_post("/webhooks/gateway/webhook", webhook)
        return app


@dataclass
class FakeSlack:
    """The Slack Web API (and response_urls): records every call, answers `{"ok": true}`."""

    error: str | None = None
    calls: list[dict] = field(default_factory=list)

    def app(self) -> web.Application:
        async def api(request: web.Request) -> web.Response:
            body = await request.json()
            self.calls.append(
                {"path": request.path, "headers": dict(request.headers), "json": body}
            )
            if self.error:
                return web.json_response({"ok": False, "error": self.error})
            return web.json_response({"ok": True, "channel": body.get("channel"), "ts": "1.2"})

        app = web.Application()
        app.router.add_post("/{tail:.*}", api)
        return app

    def posts(self) -> list[dict]:
        return [c["json"] for c in self.calls if c["path"] == "/api/chat.postMessage"]


@dataclass
class Stack:
    client: TestClient
    app: web.Application
    rasa: FakeRasa
    slack: FakeSlack
    slack_root: str  # the fake Slack's origin: response_urls point there in tests

    async def event(
        self, envelope: Any, content_type: str = "application/json", **headers: str
    ) -> ClientResponse:
        body = envelope if isinstance(envelope, bytes) else json.dumps(envelope).encode()
        sent = {"Content-Type": content_type, **slack_headers(body), **headers}
        return await self.client.post(EVENTS_PATH, data=body, headers=sent)

    async def click(self, payload: Any) -> ClientResponse:
        raw = payload if isinstance(payload, str) else json.dumps(payload)
        body = urlencode({"payload": raw}).encode()
        sent = {"Content-Type": "application/x-www-form-urlencoded", **slack_headers(body)}
        return await self.client.post(INTERACTIVE_PATH, data=body, headers=sent)

    async def settle(self) -> None:
        assert await self.app[SLACK].settle(timeout=10)


@asynccontextmanager
async def slack_stack(
    rasa: FakeRasa | None = None,
    slack: FakeSlack | None = None,
    rasa_url: str | None = None,
    token: str = TOKEN,
) -> AsyncIterator[Stack]:
    """The gateway with the Slack channel, between a fake Slack and (a fake) Rasa."""
    rasa = rasa or FakeRasa()
    slack = slack or FakeSlack()
    with tempfile.TemporaryDirectory() as folder:
        vault = Vault(create_schema(f"sqlite:///{folder}/vault.db"), Fernet.generate_key())
        async with TestServer(rasa.app()) as fake_rasa, TestServer(slack.app()) as fake_slack:
            slack_root = str(fake_slack.make_url("")).rstrip("/")
            app = create_app(rasa_url or str(fake_rasa.make_url("")), vault=vault)
            setup_slack(app, SlackSettings(token, SECRET, f"{slack_root}/api"))
            async with TestClient(TestServer(app)) as client:
                yield Stack(client, app, rasa, slack, slack_root)


def run(scenario) -> None:
    asyncio.run(scenario())


def posted_text(post: dict) -> str:
    return "\n".join(b["text"]["text"] for b in post["blocks"] if b["type"] == "section")


# ---------------------------------------------------------------- the tests


def test_slack_verifies_the_request_url_with_its_challenge():
    async def scenario() -> None:
        async with slack_stack() as stack:
            challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
            reply = await stack.event(
                {
                    "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
                    "challenge": challenge,
                    "type": "url_verification",
                }
            )
            assert reply.status == 200
            assert (await reply.json()) == {"challenge": challenge}

    run(scenario)


def test_a_direct_message_is_answered_in_its_conversation_with_text_and_buttons():
    async def scenario() -> None:
        async with slack_stack() as stack:
            reply = await stack.event(dm_event("webmail"))
            assert reply.status == 200
            await stack.settle()
        assert stack.rasa.received == [{"sender": f"slack-{TEAM}-{USER}", "message": "webmail"}]
        [call] = stack.slack.calls
        assert call["path"] == "/api/chat.postMessage"
        assert call["headers"]["Authorization"] == f"Bearer {TOKEN}"
        assert call["headers"]["Content-Type"] == "application/json; charset=utf-8"
        post = call["json"]
        assert post["channel"] == DM
        section, actions = post["blocks"]
        assert section == {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": "Le *webmail* dépend de votre académie.\n\nQuelle est votre académie ?",
            },
        }
        assert post["text"] == section["text"]["text"]  # the notification's fallback
        assert actions["type"] == "actions"
        assert [(b["text"]["text"], b["value"]) for b in actions["elements"]] == [
            ("Créteil", '/inform{"academie":"Créteil"}'),
            ("Nantes", NANTES),
        ]
        assert len({b["action_id"] for b in actions["elements"]}) == 2

    run(scenario)


def test_json_with_a_charset_is_accepted_unlike_rasas_own_connector():
    async def scenario() -> None:
        async with slack_stack() as stack:
            reply = await stack.event(
                dm_event("bonjour"), content_type="application/json; charset=utf-8"
            )
            assert reply.status == 200
            await stack.settle()
        assert [m["message"] for m in stack.rasa.received] == ["bonjour"]
        assert len(stack.slack.posts()) == 1

    run(scenario)


def test_a_request_not_signed_by_slack_is_refused_and_reaches_nobody():
    async def scenario() -> None:
        async with slack_stack() as stack:
            body = json.dumps(dm_event("bonjour")).encode()
            forged = [
                slack_headers(body, secret="not-our-secret"),
                slack_headers(body + b" "),  # signed, then altered
                {"X-Slack-Request-Timestamp": str(int(time.time()))},
                {},
                {**slack_headers(body), "X-Slack-Request-Timestamp": "demain"},
                {**slack_headers(body), "X-Slack-Signature": "v0=é"},
            ]
            for headers in forged:
                sent = {"Content-Type": "application/json", **headers}
                reply = await stack.client.post(EVENTS_PATH, data=body, headers=sent)
                assert reply.status == 401, headers
            form = urlencode({"payload": "{}"}).encode()
            reply = await stack.client.post(
                INTERACTIVE_PATH,
                data=form,
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    **slack_headers(form, secret="not-our-secret"),
                },
            )
            assert reply.status == 401
            await stack.settle()
        assert stack.rasa.received == []
        assert stack.slack.calls == []

    run(scenario)


def test_a_replayed_request_older_or_newer_than_five_minutes_is_refused():
    async def scenario() -> None:
        async with slack_stack() as stack:
            body = json.dumps(dm_event("bonjour")).encode()
            for sent_at in (time.time() - 6 * 60, time.time() + 6 * 60):
                headers = {
                    "Content-Type": "application/json",
                    **slack_headers(body, sent_at=sent_at),
                }
                reply = await stack.client.post(EVENTS_PATH, data=body, headers=headers)
                assert reply.status == 401
            recent = slack_headers(body, sent_at=time.time() - 4 * 60)
            reply = await stack.client.post(
                EVENTS_PATH, data=body, headers={"Content-Type": "application/json", **recent}
            )
            assert reply.status == 200
            await stack.settle()
        assert len(stack.rasa.received) == 1

    run(scenario)


def test_slack_gets_its_ack_at_once_and_a_retry_never_runs_the_turn_twice():
    async def scenario() -> None:
        async with slack_stack(FakeRasa(delay=1.0)) as stack:
            started = time.monotonic()
            first = await stack.event(dm_event("envoyez-moi un SMS", event_id="Ev0RETRY01"))
            assert first.status == 200
            assert time.monotonic() - started < 0.5  # Rasa is still thinking: Slack is not kept
            await asyncio.sleep(0.2)
            started = time.monotonic()
            retry = await stack.event(
                dm_event("envoyez-moi un SMS", event_id="Ev0RETRY01"),
                **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"},
            )
            assert retry.status == 200
            assert time.monotonic() - started < 0.5
            await stack.settle()
        assert len(stack.rasa.received) == 1
        assert len(stack.slack.posts()) == 1

    run(scenario)


def test_a_button_click_sends_its_payload_and_shows_the_choice():
    async def scenario() -> None:
        async with slack_stack() as stack:
            await stack.event(dm_event("webmail"))
            await stack.settle()
            [offer] = stack.slack.posts()
            response_url = f"{stack.slack_root}/actions/{TEAM}/6011/abcdef"
            payload = click_payload(offer, "Nantes", response_url)
            reply = await stack.click(payload)
            assert reply.status == 200
            again = await stack.click(payload)  # the same click delivered twice
            assert again.status == 200
            await stack.settle()
        assert [m["message"] for m in stack.rasa.received] == ["webmail", NANTES]
        assert {m["sender"] for m in stack.rasa.received} == {f"slack-{TEAM}-{USER}"}
        [update] = [c for c in stack.slack.calls if c["path"].startswith("/actions/")]
        assert "Authorization" not in update["headers"]  # the bot token stays with the Web API
        assert update["json"]["replace_original"] is True
        blocks = update["json"]["blocks"]
        assert [b["type"] for b in blocks] == ["section", "context"]  # no second click
        assert blocks[1]["elements"][0]["text"] == "Votre choix : *Nantes*"
        assert len(stack.slack.posts()) == 2

    run(scenario)


def test_a_response_url_elsewhere_than_slack_is_never_called():
    elsewhere = FakeSlack()

    async def scenario() -> None:
        async with TestServer(elsewhere.app()) as other, slack_stack() as stack:
            await stack.event(dm_event("webmail"))
            await stack.settle()
            [offer] = stack.slack.posts()
            payload = click_payload(offer, "Nantes", str(other.make_url("/latest/meta-data")))
            assert (await stack.click(payload)).status == 200
            await stack.settle()
        assert elsewhere.calls == []
        assert [m["message"] for m in stack.rasa.received] == ["webmail", NANTES]

    run(scenario)
    channel = SlackChannel(SlackSettings(TOKEN, SECRET, "https://slack.com/api"))
    assert channel.may_call("https://hooks.slack.com/actions/T061EG9R6/6011/abc")
    assert channel.may_call("https://slack.com/api/whatever")
    for url in [
        "http://hooks.slack.com/actions/T/1/a",
        "https://hooks.slack.com:8443/actions/T/1/a",
        "https://hooks.slack.com.example.org/actions",
        "https://hooks.slack.com@169.254.169.254/latest",
        "http://169.254.169.254/latest/meta-data",
        "file:///etc/passwd",
        "/actions/T/1/a",
        "",
    ]:
        assert not channel.may_call(url), url


def test_bots_edits_and_other_conversations_are_not_answered():
    ignored = [
        dm_event("Réponse de l'assistant", event_id="Ev1", bot_id="B0BOT0001", app_id="A0KRD7HC3"),
        dm_event("Un autre robot", event_id="Ev2", subtype="bot_message", bot_id="B0OTHER01"),
        dm_event("corrigé", event_id="Ev3", subtype="message_changed", message={"text": "x"}),
        dm_event("supprimé", event_id="Ev4", subtype="message_deleted"),
        dm_event("moi-même", event_id="Ev5", user=BOT_USER),
        dm_event("dans un canal", event_id="Ev6", channel_type="channel"),
        dm_event("<@U0BOT0001> webmail", event_id="Ev7", type="app_mention"),
        {"type": "app_rate_limited", "team_id": TEAM, "minute_rate_limited": 1518467820},
    ]

    async def scenario() -> None:
        async with slack_stack() as stack:
            for envelope in ignored:
                assert (await stack.event(envelope)).status == 200, envelope
            await stack.settle()
        assert stack.rasa.received == []
        assert stack.slack.calls == []

    run(scenario)


def test_malformed_requests_get_400_never_500():
    wrong_events: list[Any] = [
        b"{pas du json",
        b"\xff\xfe\x00",
        b"[" * 60_000,
        [1, 2],
        {"type": "url_verification", "challenge": 42},
        {**dm_event("x"), "event": ["message"]},
        {**dm_event("x"), "event_id": 12},
        {**dm_event("x"), "team_id": None},
        dm_event(42),
        dm_event("x", user=["U1"]),
        dm_event("x", user="U1<!channel>"),
        dm_event("x", channel=None),
    ]
    good_click = {
        "type": "block_actions",
        "user": {"id": USER},
        "team": {"id": TEAM},
        "channel": {"id": DM},
        "actions": [{"type": "button", "action_id": "rasa-0", "value": "/help", "action_ts": "1"}],
    }
    wrong_clicks: list[Any] = [
        "{pas du json",
        "[]",
        {**good_click, "actions": "rasa-0"},
        {**good_click, "user": "U1"},
        {**good_click, "team": {"id": 7}},
        {**good_click, "actions": [{**good_click["actions"][0], "value": 3}]},
    ]

    async def scenario() -> None:
        async with slack_stack() as stack:
            for envelope in wrong_events:
                reply = await stack.event(envelope)
                assert reply.status == 400, envelope
            for payload in wrong_clicks:
                reply = await stack.click(payload)
                assert reply.status == 400, payload
            body = b"payload="
            no_payload = await stack.client.post(
                INTERACTIVE_PATH,
                data=body,
                headers={
                    "Content-Type": "application/x-www-form-urlencoded",
                    **slack_headers(body),
                },
            )
            assert no_payload.status == 400
            text = json.dumps(dm_event("x")).encode()
            wrong_type = await stack.client.post(
                EVENTS_PATH,
                data=text,
                headers={"Content-Type": "text/plain", **slack_headers(text)},
            )
            assert wrong_type.status == 415
            huge = b" " * 200_000
            too_big = await stack.client.post(
                EVENTS_PATH,
                data=huge,
                headers={"Content-Type": "application/json", **slack_headers(huge)},
            )
            assert too_big.status == 413
            await stack.settle()
        assert stack.rasa.received == []
        assert stack.slack.calls == []

    run(scenario)


def test_what_the_bot_says_cannot_mention_everyone_or_inject_markup():
    assert to_mrkdwn("<!channel> <script>alert(1)</script> R&D **gras**\n- point") == (
        "&lt;!channel&gt; &lt;script&gt;alert(1)&lt;/script&gt; R&amp;D *gras*\n• point"
    )
    rasa = FakeRasa(
        answer=[
            {
                "text": "<!channel> <@U0BOSS> <script>x</script> https://webmel.ac-creteil.fr",
                "buttons": [{"title": "<!here> ici", "payload": "/affirm"}],
            }
        ]
    )

    async def scenario() -> None:
        async with slack_stack(rasa) as stack:
            await stack.event(dm_event("bonjour"))
            await stack.settle()
        [post] = stack.slack.posts()
        text = posted_text(post)
        assert text == (
            "&lt;!channel&gt; &lt;@U0BOSS&gt; &lt;script&gt;x&lt;/script&gt; "
            "https://webmel.ac-creteil.fr"
        )
        assert "<" not in post["text"]
        [button] = post["blocks"][1]["elements"]
        assert button["text"] == {"type": "plain_text", "text": "<!here> ici", "emoji": True}

    run(scenario)


def test_what_the_user_typed_is_read_without_slacks_link_markup():
    typed = "<mailto:claire@ac-nantes.fr|claire@ac-nantes.fr> &lt;3 <http://webmel.fr> <@U0BOT>"
    assert from_slack_text(typed) == "claire@ac-nantes.fr <3 http://webmel.fr "
    assert from_slack_text("R&amp;D &amp;lt;") == "R&D &lt;"


def test_a_numen_typed_in_slack_is_masked_before_rasa_sees_it():
    async def scenario() -> None:
        async with slack_stack() as stack:
            await stack.event(dm_event("mon NUMEN est 01E9501234ABC"))
            await stack.settle()
        assert [m["message"] for m in stack.rasa.received] == ["mon NUMEN est NUMEN_MASQUE"]
        assert "01E9501234ABC" not in json.dumps(stack.rasa.received)

    run(scenario)


def test_when_rasa_is_down_the_user_is_told_in_french_and_slack_errors_are_logged_without_text(
    caplog: pytest.LogCaptureFixture,
):
    async def rasa_down() -> None:
        async with slack_stack(rasa_url=f"http://127.0.0.1:{free_port()}") as stack:
            await stack.event(dm_event("bonjour"))
            await stack.settle()
        [post] = stack.slack.posts()
        assert "momentanément indisponible" in posted_text(post)

    async def slack_refuses() -> None:
        async with slack_stack(slack=FakeSlack(error="channel_not_found")) as stack:
            await stack.event(dm_event("question très personnelle"))
            await stack.settle()
        assert len(stack.slack.posts()) == 1

    run(rasa_down)
    with caplog.at_level(logging.WARNING, logger="bot.channels.slack"):
        run(slack_refuses)
    logged = caplog.text
    assert "chat.postMessage failed" in logged and "channel_not_found" in logged
    assert "webmail" not in logged and "personnelle" not in logged


def test_a_reply_in_preparation_at_shutdown_is_still_delivered():
    async def scenario() -> None:
        async with slack_stack(FakeRasa(delay=0.5)) as stack:
            await stack.event(dm_event("bonjour"))
            await stack.client.close()  # the gateway stops while Rasa is still answering
            assert len(stack.slack.posts()) == 1

    run(scenario)


def test_slack_is_off_without_a_token_and_needs_its_signing_secret():
    async def scenario() -> None:
        async with slack_stack(token="") as stack:
            assert (await stack.event(dm_event("bonjour"))).status == 404
            assert (await stack.click({"type": "block_actions"})).status == 404
        assert stack.rasa.received == []

    run(scenario)
    assert not SlackSettings.from_env({}).enabled
    with pytest.raises(RuntimeError, match="SLACK_SIGNING_SECRET"):
        SlackSettings.from_env({"SLACK_BOT_TOKEN": TOKEN})
    settings = SlackSettings.from_env(
        {
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": "http://127.0.0.1:9/api/",
        }
    )
    assert settings.enabled and settings.api_url == "http://127.0.0.1:9/api"
    assert (
        SlackSettings.from_env({"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SECRET}).api_url
        == "https://slack.com/api"
    )
    assert TOKEN not in repr(settings) and SECRET not in repr(settings)


def test_long_answers_and_many_buttons_fit_slacks_limits():
    academies = [{"title": f"Académie {n}", "payload": f"/inform{{{n}}}"} for n in range(31)]
    too_long = [
        {"title": "x" * 100, "payload": "/ok"},
        {"title": "trop long", "payload": "/" + "y" * 2000},
    ]
    blocks = blocks_for(
        [
            {"text": ("Une ligne de texte assez longue. " * 3 + "\n") * 100},
            {"text": "Quelle est votre académie ?", "buttons": academies + too_long},
        ]
    )
    sections = [b for b in blocks if b["type"] == "section"]
    assert all(len(b["text"]["text"]) <= 3000 for b in sections) and len(sections) == 5
    actions = [b for b in blocks if b["type"] == "actions"]
    assert [len(b["elements"]) for b in actions] == [25, 7]
    elements = [e for b in actions for e in b["elements"]]
    assert len({e["action_id"] for e in elements}) == len(elements)
    assert len(elements[-1]["text"]["text"]) == 75
    assert all(len(e["value"]) <= 2000 for e in elements)


def test_through_the_real_assistant_a_slack_user_gets_the_webmail_of_their_academie(live_bot):
    async def scenario() -> None:
        async with slack_stack(rasa_url=live_bot.url) as stack:
            await stack.event(dm_event("webmail Créteil", event_id="EvLIVE1", user="U0LIVE001"))
            await stack.settle()
            [creteil] = stack.slack.posts()
            assert "webmel.ac-creteil.fr" in posted_text(creteil)

            await stack.event(dm_event("webmail", event_id="EvLIVE2", user="U0LIVE002"))
            await stack.settle()
            offer = stack.slack.posts()[-1]
            titles = [
                e["text"]["text"]
                for b in offer["blocks"]
                if b["type"] == "actions"
                for e in b["elements"]
            ]
            assert "Nantes" in titles and len(titles) > 25  # every académie, in two blocks
            response_url = f"{stack.slack_root}/actions/{TEAM}/1/x"
            click = click_payload(offer, "Nantes", response_url, user="U0LIVE002")
            assert (await stack.click(click)).status == 200
            await stack.settle()
            assert "webmel.ac-nantes.fr" in posted_text(stack.slack.posts()[-1])

    run(scenario)
