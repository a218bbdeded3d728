"""Bad input at the edge: every public endpoint of the gateway (chat, history, Telegram and
Slack webhooks, the console's login, reply and copilot) gets malformed JSON, huge bodies, odd
Unicode (lone surrogates, RTL marks, NUL, emoji), wrong types and wrong content types, generated
by hypothesis with a fixed seed and budget. Each answer is below 500, with a French `error`
where the endpoint speaks JSON; no error is logged; and afterwards a valid message on the same
endpoint still gets its answer and is recorded (nothing lost)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlencode

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.answers.handoff import REASON_ASKED
from bot.channels.slack import EVENTS_PATH, INTERACTIVE_PATH, SLACK, SlackSettings, setup_slack
from bot.channels.telegram import ROUTE, SECRET_HEADER, TELEGRAM, TelegramSettings, setup_telegram
from bot.config import REPO_ROOT
from bot.db import create_schema
from bot.gateway import console
from bot.gateway.app import MAX_BODY_BYTES, create_app
from bot.gateway.keys import DESK
from bot.gateway.state import MemoryLoginAttempts
from bot.knowledge import Knowledge, load_kb
from bot.local_stack import TEST_LIMITS
from bot.personal_data.vault import Vault
from bot.support import models
from bot.support.accounts import Accounts, LoginThrottle
from bot.support.desk import SupportDesk
from bot.support.store import SupportStore, TurnNlu

T = TypeVar("T")
KB = REPO_ROOT / "kb" / "faq_fr.md"
FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI stays reproducible and bounded
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
TELEGRAM_TOKEN = "123456789:AAE-fake-token-for-fuzzing"
TELEGRAM_SECRET = "fuzz_webhook-secret_0123456789"
SLACK_TOKEN = "xoxb-fuzz-not-a-real-token"
SLACK_SECRET = "fuzz-signing-secret-not-real"
PASSWORD = "une phrase de passe solide"
WAITING_CONVERSATION = "web-fuzz-waiting"
FRENCH = ("é", "è", "à", "ç", "ê", " : ", " ou ", " de ", " la ", " le ", " est ", "ez ")


# ---------------------------------------------------------------------- what is sent

ODD_CHARACTERS = [
    "\x00", "\ud800", "\udfff", "\ud83d", "\u202e", "\u200f", "\u200b", "\ufeff", "\u2028",
    "\U0001f600", "\U0001f469\u200d\U0001f469\u200d\U0001f467", "e\u0301", "ﷺ", "\uffff",
    "\U0010ffff", "/", "{", "\\", '"', "<script>", "\r\n", "\t",
]  # fmt: skip
odd_text = st.lists(
    st.one_of(st.characters(codec=None), st.sampled_from(ODD_CHARACTERS)), max_size=40
).map("".join)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    odd_text,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4),
    max_leaves=12,
)
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=latin-1",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "",
]


def encoded(value: Any) -> bytes:
    """JSON as a client would send it: lone surrogates escaped (`\\ud800`), the rest UTF-8."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "backslashreplace")


# Bodies that are not JSON at all, or not what the parser can take.
BROKEN = [
    b"",
    b"{",
    b"\xff\xfe\x00{",
    b"\xc3(",
    b"NaN",
    b'{"message": NaN}',
    b'{"message": "\\ud800"}',
    b'{"message": "x", "message": 1}',
    b"[" * 20_000 + b"]" * 20_000,  # deeper than the JSON parser's recursion limit
    b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    b"1e999999",
    b"9" * 5_000,  # an integer longer than Python's int-from-string limit
    b"x" * (MAX_BODY_BYTES + 1),
    b'{"message": "' + b"a" * 2_000_000 + b'"}',
]


def bodies(shaped: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """Bodies for an endpoint: JSON of the right shape with fuzzed values, any JSON, any bytes."""
    return st.one_of(
        shaped.map(encoded),
        json_values.map(encoded),
        st.binary(max_size=400),
        st.sampled_from(BROKEN),
    )


def with_keys(*names: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({name: json_values for name in names}) | st.fixed_dictionaries(
        {name: odd_text for name in names}, optional={"extra": json_values}
    )


# ---------------------------------------------------------------------- the bench


@dataclass
class FakeRasa:
    """Rasa's channel: echoes what it was sent, with the NLU's topic, as Rasa answers."""

    received: list[str] = field(default_factory=list)

    def app(self) -> web.Application:
        async def webhook(request: web.Request) -> web.Response:
            message = (await request.json())["message"]
            self.received.append(message)
            answer = [{"text": f"Bien reçu : {message[:40]}"}]
            return web.json_response(
                {"messages": answer, "nlu": {"intent": "faq_webmail", "confidence": 0.9}}
            )

        async def parse(request: web.Request) -> web.Response:
            text = (await request.json())["text"]
            intent = {"name": "faq_webmail", "confidence": 0.9}
            return web.json_response(
                {"text": text, "intent": intent, "intent_ranking": [intent], "entities": []}
            )

        app = web.Application()
        app.router.add_post("/webhooks/gateway/webhook", webhook)
        app.router.add_post("/webhooks/gateway/parse", parse)
        return app


@dataclass
class FakeApis:
    """Telegram's Bot API and Slack's Web API: record every call and answer ok."""

    telegram: list[dict[str, Any]] = field(default_factory=list)
    slack: list[dict[str, Any]] = field(default_factory=list)

    def app(self) -> web.Application:
        async def telegram(request: web.Request) -> web.Response:
            body = await request.json()
            self.telegram.append({"method": request.match_info["method"], **body})
            result: Any = {"message_id": len(self.telegram), "chat": {"id": 1}, "date": 0}
            return web.json_response({"ok": True, "result": result})

        async def slack(request: web.Request) -> web.Response:
            body = await request.json()
            self.slack.append(body)
            return web.json_response({"ok": True, "channel": body.get("channel"), "ts": "1.2"})

        app = web.Application()
        app.router.add_post("/bot{token}/{method}", telegram)
        app.router.add_post("/slack/{tail:.*}", slack)
        return app


@dataclass(repr=False)
class Edge:
    """The gateway with every channel on, between fake Rasa / Telegram / Slack, on SQLite."""

    loop: asyncio.AbstractEventLoop
    client: TestClient
    app: web.Application
    rasa: FakeRasa
    apis: FakeApis
    engine: Any
    csrf: str = ""

    def __repr__(self) -> str:  # hypothesis prints the arguments of a failing example
        return "Edge()"

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(work)

    async def post(
        self, path: str, body: bytes, content_type: str = "application/json", **headers: str
    ) -> ClientResponse:
        if content_type:
            headers["Content-Type"] = content_type
        reply = await self.client.post(path, data=body, headers=headers)
        await reply.read()
        return reply

    def turns(self, text: str) -> list[str]:
        """Roles of the stored turns whose text is `text`."""
        with Session(self.engine, future=True) as session:
            rows = session.scalars(select(models.Turn.role).where(models.Turn.text == text))
            return list(rows)


@pytest.fixture()
def edge(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Iterator[Edge]:
    # The fuzz is one client sending hundreds of messages: the rate limit is not under test.
    for name, value in TEST_LIMITS.items():
        monkeypatch.setenv(name, value)
    loop = asyncio.new_event_loop()
    stack = AsyncExitStack()
    with tempfile.TemporaryDirectory() as folder:
        engine = create_schema(f"sqlite:///{folder}/bot.db")
        load_kb(engine, KB)  # the copilot searches it
        accounts = Accounts(engine)
        accounts.create_agent("alice", "Alice Martin", PASSWORD, "agent")
        desk = SupportDesk(SupportStore(engine), Knowledge(engine))
        vault = Vault(engine, Fernet.generate_key())
        rasa, apis = FakeRasa(), FakeApis()

        async def start() -> Edge:
            rasa_server = await stack.enter_async_context(TestServer(rasa.app()))
            api_server = await stack.enter_async_context(TestServer(apis.app()))
            apis_url = str(api_server.make_url("")).rstrip("/")
            app = create_app(str(rasa_server.make_url("")), vault, desk)
            # The fuzz logs in from one address: only the per-login limit stays on.
            app[console.THROTTLE] = MemoryLoginAttempts(LoginThrottle(per_address=10**9))
            telegram = TelegramSettings(TELEGRAM_TOKEN, apis_url, TELEGRAM_SECRET, "")
            setup_telegram(app, telegram)
            setup_slack(app, SlackSettings(SLACK_TOKEN, SLACK_SECRET, f"{apis_url}/slack"))
            client = await stack.enter_async_context(TestClient(TestServer(app)))
            return Edge(loop, client, app, rasa, apis, engine)

        bench = loop.run_until_complete(start())
        caplog.set_level(logging.WARNING)
        try:
            yield bench
            # Ours only: aiohttp's HTTP parser logs the requests it refuses with a 400 itself.
            errors = [
                r for r in caplog.records if r.levelno >= logging.ERROR and r.name.startswith("bot")
            ]
            assert not errors, [r.getMessage()[:200] for r in errors]
        finally:
            loop.run_until_complete(stack.aclose())
            loop.close()


def assert_handled(reply: ClientResponse, body: bytes, speaks_json: bool = True) -> None:
    """Below 500; a refusal from a JSON endpoint is JSON with a French `error`."""
    assert reply.status < 500, (reply.status, body[:200])
    if speaks_json and reply.status >= 400 and reply.status not in (404, 405):
        assert reply.content_type == "application/json", (reply.status, body[:200])
        error = json.loads(reply._body or b"{}").get("error")
        assert isinstance(error, str) and any(word in error for word in FRENCH), error


# ---------------------------------------------------------------------- the web chat


@FUZZ
@given(body=bodies(with_keys("message")), content_type=st.sampled_from(CONTENT_TYPES))
def fuzz_chat(edge: Edge, body: bytes, content_type: str) -> None:
    edge.client.session.cookie_jar.clear()  # a new visitor each time

    async def send() -> None:
        reply = await edge.post("/api/chat", body, content_type)
        assert_handled(reply, body)
        if reply.status == 200:
            answer = json.loads(reply._body or b"")
            assert isinstance(answer["messages"], list) and answer["state"] == "bot"

    edge.run(send())


def test_the_chat_api_answers_any_body_with_at_most_a_french_4xx(edge: Edge):
    fuzz_chat(edge)
    assert edge.rasa.received  # some fuzzed messages were valid, and went through
    edge.client.session.cookie_jar.clear()

    async def after() -> None:
        reply = await edge.client.post("/api/chat", json={"message": "webmail Créteil"})
        assert reply.status == 200
        assert "Bien reçu : webmail Créteil" in str(await reply.json())
        history = await (await edge.client.get("/api/history")).json()
        assert [m["text"] for m in history["messages"]] == [
            "webmail Créteil",
            "Bien reçu : webmail Créteil",
        ]

    edge.run(after())


@FUZZ
@given(
    after=st.one_of(odd_text, st.integers().map(str), st.sampled_from(["", "-1", "1e3", "١٢"])),
    cookie=st.one_of(st.none(), odd_text.filter(lambda c: c.isprintable() and ";" not in c)),
)
@example(after="9" * 13, cookie=None)
@example(after="０", cookie="x" * 43)
def fuzz_history(edge: Edge, after: str, cookie: str | None) -> None:
    async def read() -> None:
        edge.client.session.cookie_jar.clear()
        headers = {}
        if cookie is not None:
            headers["Cookie"] = "sid=" + json.dumps(cookie, ensure_ascii=True)
        reply = await edge.client.get("/api/history", params={"after": after}, headers=headers)
        await reply.read()
        assert_handled(reply, after.encode("utf-8", "backslashreplace"))

    edge.run(read())


def test_the_history_api_refuses_any_odd_position_with_a_french_400(edge: Edge):
    fuzz_history(edge)


# ---------------------------------------------------------------------- Telegram


def telegram_update(update_id: int, text: Any, chat: Any = 4242) -> dict[str, Any]:
    person = {"id": chat, "is_bot": False, "first_name": "Camille"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1700000000,
            "from": person,
            "chat": {"id": chat, "type": "private", "first_name": "Camille"},
            "text": text,
        },
    }


telegram_updates = st.builds(
    telegram_update,
    update_id=st.one_of(st.integers(min_value=1, max_value=2**40), json_values),
    text=st.one_of(odd_text, json_values),
    chat=st.one_of(st.integers(min_value=1, max_value=2**40), json_values),
)


@FUZZ
@given(
    body=bodies(telegram_updates),
    secret=st.one_of(
        st.just(TELEGRAM_SECRET),
        st.none(),
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30),
    ),
    content_type=st.sampled_from(CONTENT_TYPES),
)
def fuzz_telegram(edge: Edge, body: bytes, secret: str | None, content_type: str) -> None:
    async def deliver() -> None:
        headers = {} if secret is None else {SECRET_HEADER: secret}
        reply = await edge.post(ROUTE, body, content_type, **headers)
        assert_handled(reply, body)
        if secret != TELEGRAM_SECRET:
            assert reply.status == 401
        await edge.app[TELEGRAM].wait_idle()

    edge.run(deliver())


def test_the_telegram_webhook_answers_any_update_with_at_most_a_4xx(edge: Edge):
    fuzz_telegram(edge)
    before = len(edge.apis.telegram)

    async def after() -> None:
        update = json.dumps(telegram_update(2**41, "webmail Créteil", 777)).encode()
        reply = await edge.post(ROUTE, update, **{SECRET_HEADER: TELEGRAM_SECRET})
        assert reply.status == 200
        await edge.app[TELEGRAM].wait_idle()

    edge.run(after())
    sent = [c for c in edge.apis.telegram[before:] if c["method"] == "sendMessage"]
    assert [c["chat_id"] for c in sent] == [777]
    assert "Bien reçu : webmail Créteil" in sent[0]["text"]
    assert edge.turns("webmail Créteil") == ["user"]


# ---------------------------------------------------------------------- Slack


def signed(body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    base = f"v0:{timestamp}:".encode() + body
    digest = hmac.new(SLACK_SECRET.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": f"v0={digest}"}


def slack_message(event_id: Any, text: Any, user: Any = "U0FUZZ", kind: Any = "message") -> dict:
    return {
        "type": "event_callback",
        "event_id": event_id,
        "team_id": "T0FUZZ",
        "event": {"type": kind, "channel_type": "im", "channel": "D0FUZZ", "user": user,
                  "text": text, "ts": "1700000000.000200"},
    }  # fmt: skip


slack_events = st.one_of(
    st.builds(
        slack_message,
        event_id=st.one_of(st.uuids().map(str), json_values),
        text=st.one_of(odd_text, json_values),
        user=st.one_of(st.just("U0FUZZ"), json_values),
        kind=st.one_of(st.just("message"), json_values),
    ),
    st.fixed_dictionaries({"type": st.just("url_verification"), "challenge": json_values}),
)


@FUZZ
@given(body=bodies(slack_events), content_type=st.sampled_from(CONTENT_TYPES))
def fuzz_slack_events(edge: Edge, body: bytes, content_type: str) -> None:
    async def deliver() -> None:
        reply = await edge.post(EVENTS_PATH, body, content_type, **signed(body))
        assert_handled(reply, body, speaks_json=False)  # Slack reads the status only
        await edge.app[SLACK].settle(timeout=10)

    edge.run(deliver())


def click(action: Any, user: Any = "U0FUZZ", response_url: Any = "") -> dict[str, Any]:
    return {
        "type": "block_actions",
        "user": {"id": user},
        "channel": {"id": "D0FUZZ"},
        "container": {"type": "message", "channel_id": "D0FUZZ", "message_ts": "1.2"},
        "response_url": response_url,
        "actions": [action],
    }


slack_clicks = st.builds(
    click,
    action=st.one_of(
        json_values,
        st.fixed_dictionaries(
            {
                "type": st.just("button"),
                "value": st.one_of(odd_text, json_values),
                "action_ts": st.one_of(st.just("1700000005.4"), json_values),
                "text": json_values,
            }
        ),
    ),
    user=st.one_of(st.just("U0FUZZ"), json_values),
    response_url=st.one_of(st.just("https://hooks.slack.com/actions/x"), json_values),
)
slack_forms = st.one_of(
    slack_clicks.map(lambda payload: urlencode({"payload": encoded(payload)}).encode()),
    st.dictionaries(odd_text, odd_text, max_size=30).map(
        lambda form: urlencode(form, errors="surrogatepass").encode()
    ),
    st.binary(max_size=400),
    st.sampled_from(BROKEN),
)


@FUZZ
@given(body=slack_forms, content_type=st.sampled_from(CONTENT_TYPES))
def fuzz_slack_clicks(edge: Edge, body: bytes, content_type: str) -> None:
    async def deliver() -> None:
        reply = await edge.post(INTERACTIVE_PATH, body, content_type, **signed(body))
        assert_handled(reply, body, speaks_json=False)
        await edge.app[SLACK].settle(timeout=10)

    edge.run(deliver())


def test_the_slack_webhooks_answer_any_signed_body_with_at_most_a_4xx(edge: Edge):
    fuzz_slack_events(edge)
    fuzz_slack_clicks(edge)
    # Unsigned, the same bodies never reach the parser.
    reply = edge.run(edge.post(EVENTS_PATH, b"{", "application/json"))
    assert reply.status == 401
    before = len(edge.apis.slack)

    async def after() -> None:
        body = json.dumps(slack_message("Ev-after-fuzz", "webmail Créteil")).encode()
        reply = await edge.post(EVENTS_PATH, body, **signed(body))
        assert reply.status == 200
        assert await edge.app[SLACK].settle(timeout=10)

    edge.run(after())
    posted = [json.dumps(post, ensure_ascii=False) for post in edge.apis.slack[before:]]
    assert len(posted) == 1 and "Bien reçu : webmail Créteil" in posted[0]
    assert edge.turns("webmail Créteil") == ["user"]


# ---------------------------------------------------------------------- the console


@FUZZ
@given(
    body=bodies(
        st.fixed_dictionaries(
            {
                "login": st.one_of(st.sampled_from(["alice", "ALICE ", "bob"]), json_values),
                "password": st.one_of(odd_text, json_values),
            }
        )
    ),
    content_type=st.sampled_from(CONTENT_TYPES),
)
def fuzz_login(edge: Edge, body: bytes, content_type: str) -> None:
    async def login() -> None:
        reply = await edge.post("/console/api/login", body, content_type)
        assert_handled(reply, body)
        assert reply.status != 200  # never a session without alice's password

    edge.run(login())


def test_the_console_login_refuses_any_odd_body_with_a_french_4xx(edge: Edge):
    fuzz_login(edge)
    # Fuzzed attempts at "alice" locked her login for a while (the throttle works); another
    # agent created now still signs in.
    Accounts(edge.engine).create_agent("bruno", "Bruno Petit", PASSWORD, "agent")
    reply = edge.run(
        edge.client.post("/console/api/login", json={"login": "bruno", "password": PASSWORD})
    )
    assert reply.status == 200


async def signed_in(edge: Edge) -> None:
    reply = await edge.client.post(
        "/console/api/login", json={"login": "alice", "password": PASSWORD}
    )
    assert reply.status == 200, await reply.text()
    edge.csrf = (await reply.json())["csrf"]


async def handoff_taken_by_alice(edge: Edge) -> None:
    """A user asked for a person, alice took the conversation."""
    desk = edge.app[DESK]
    await desk.record_exchange(WAITING_CONVERSATION, "un conseiller", TurnNlu("ask_human", 0.9), [])
    await desk.request_handoff(WAITING_CONVERSATION, REASON_ASKED)
    handoff = desk.store.open_handoff_of(WAITING_CONVERSATION)
    assert handoff is not None
    reply = await edge.client.post(
        f"/console/api/handoffs/{handoff.id}/take", headers={"X-CSRF-Token": edge.csrf}
    )
    assert reply.status == 200, await reply.text()


CONSOLE_WRITES = [
    f"/console/api/conversations/{WAITING_CONVERSATION}/reply",
    "/console/api/conversations/web-inconnue/reply",
    "/console/api/suggest",
]


@FUZZ
@given(
    path=st.sampled_from(CONSOLE_WRITES),
    body=bodies(
        st.one_of(
            with_keys("text"),
            st.fixed_dictionaries(
                {
                    "conversation": st.one_of(st.just(WAITING_CONVERSATION), json_values),
                    "turn": st.one_of(st.integers(), json_values),
                }
            ),
        )
    ),
    content_type=st.sampled_from(CONTENT_TYPES),
    csrf=st.sampled_from(["ok", "", "faux"]),
)
def fuzz_console_writes(edge: Edge, path: str, body: bytes, content_type: str, csrf: str) -> None:
    async def write() -> None:
        token = edge.csrf if csrf == "ok" else csrf
        reply = await edge.post(path, body, content_type, **{"X-CSRF-Token": token})
        assert_handled(reply, body)
        if csrf != "ok":
            assert reply.status == 403

    edge.run(write())


def test_the_console_reply_and_copilot_refuse_any_odd_body_with_a_french_4xx(edge: Edge):
    edge.run(signed_in(edge))
    edge.run(handoff_taken_by_alice(edge))
    fuzz_console_writes(edge)

    async def after() -> None:
        reply = await edge.client.post(
            CONSOLE_WRITES[0],
            json={"text": "Bonjour, je regarde votre dossier."},
            headers={"X-CSRF-Token": edge.csrf},
        )
        assert reply.status == 200, await reply.text()
        me = await edge.client.get("/console/api/me")
        assert me.status == 200

    edge.run(after())
    assert edge.turns("Bonjour, je regarde votre dossier.") == ["agent"]


# ---------------------------------------------------------------------- every route, raw

Probe = Callable[[Edge], Awaitable[ClientResponse]]


def test_unknown_paths_methods_and_huge_headers_are_refused_without_a_500(edge: Edge):
    async def probes() -> None:
        for method, path in [
            ("GET", "/api/chat"),
            ("PUT", "/api/chat"),
            ("DELETE", "/console/api/login"),
            ("GET", "/static/../bot/config.py"),
            ("GET", "/static/%2e%2e/%2e%2e/requirements.lock"),
            ("GET", "/console/api/conversations/" + "é" * 200),
            ("GET", "/console/api/insights?days=" + "9" * 50),
            ("POST", "/webhooks/slack/events"),
            ("GET", "/\x00"),
        ]:
            reply = await edge.client.request(method, path)
            await reply.read()
            assert reply.status < 500, (method, path, reply.status)
            assert "Content-Security-Policy" in reply.headers, (method, path)
        huge = await edge.client.get("/api/history", headers={"X-Junk": "x" * 9000})
        assert 400 <= huge.status < 500
        assert (await edge.client.get("/health")).status == 200

    edge.run(probes())
