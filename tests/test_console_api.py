"""The support agents' console API, in process against a real SQLite file: signing in, the
session cookie and CSRF token, who may do what (401 anonymous, 403 analysts), the queue and
its live events, taking over, replying on the user's own channel, handing back, the audit
trail, the copilot and the statistics; and the agents' accounts and their command line."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, ClientSession, CookieJar, web
from aiohttp.test_utils import TestServer
from cryptography.fernet import Fernet
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.answers.handoff import REASON_ASKED
from bot.config import REPO_ROOT
from bot.db import create_schema, make_engine
from bot.gateway import console
from bot.gateway.app import create_app, sender_id
from bot.knowledge import Knowledge, load_kb
from bot.knowledge.kb_file import read_kb
from bot.local_stack import free_port
from bot.personal_data.vault import Vault
from bot.support import accounts as accounts_module
from bot.support import models, wording
from bot.support.accounts import (
    AccountError,
    Accounts,
    LoginThrottle,
    hash_password,
    verify_password,
)
from bot.support.desk import SupportDesk
from bot.support.store import SupportStore, TurnNlu

KB = REPO_ROOT / "kb" / "faq_fr.md"
PASSWORD = "une phrase de passe solide"
AGENTS = {  # login: (display name, role, active)
    "alice": ("Alice Martin", "agent", True),
    "bruno": ("Bruno Petit", "agent", True),
    "carole": ("Carole Analyse", "analyst", True),
    "denis": ("Denis Parti", "agent", False),
}
# Every console endpoint, with what an anonymous or analyst request to it gets.
ENDPOINTS = [
    ("GET", "/console/api/me", None),
    ("POST", "/console/api/logout", {}),
    ("GET", "/console/api/queue", None),
    ("GET", "/console/api/events", None),
    ("GET", "/console/api/conversations/web-abc", None),
    ("POST", "/console/api/conversations/web-abc/reply", {"text": "Bonjour"}),
    ("POST", "/console/api/handoffs/1/take", {}),
    ("POST", "/console/api/handoffs/1/release", {}),
    ("POST", "/console/api/suggest", {"text": "webmail Lyon"}),
    ("GET", "/console/api/insights", None),
    ("GET", "/console/api/insights/daily.png", None),
    ("GET", "/console/api/insights/topics.png", None),
    ("GET", "/console/api/insights/candidates.yml", None),
]
AGENTS_ONLY = {
    "/console/api/queue",
    "/console/api/events",
    "/console/api/conversations/web-abc",
    "/console/api/conversations/web-abc/reply",
    "/console/api/handoffs/1/take",
    "/console/api/handoffs/1/release",
    "/console/api/suggest",
}


# ---------------------------------------------------------------------- the test bench


class Browser:
    """One browser (its own cookies) on the gateway; remembers its console's CSRF token."""

    def __init__(self, base_url: str) -> None:
        self.http = ClientSession(base_url=base_url, cookie_jar=CookieJar(unsafe=True))
        self.csrf = ""

    async def login(self, login: str, password: str = PASSWORD, **kwargs: Any) -> ClientResponse:
        reply = await self.http.post(
            "/console/api/login", json={"login": login, "password": password}, **kwargs
        )
        if reply.status == 200:
            self.csrf = (await reply.json())["csrf"]
        return reply

    async def get(self, path: str, **kwargs: Any) -> ClientResponse:
        return await self.http.get(path, **kwargs)

    async def post(
        self, path: str, body: Any = None, csrf: str | None = None, **kwargs: Any
    ) -> ClientResponse:
        headers = {"X-CSRF-Token": self.csrf if csrf is None else csrf, **kwargs.pop("headers", {})}
        return await self.http.post(
            path, json={} if body is None else body, headers=headers, **kwargs
        )

    def cookie(self, name: str) -> str | None:
        for cookie in self.http.cookie_jar:
            if cookie.key == name:
                return cookie.value
        return None


@dataclass
class Bench:
    server: TestServer
    desk: SupportDesk
    engine: Engine
    browsers: list[Browser] = field(default_factory=list)

    def browser(self) -> Browser:
        browser = Browser(str(self.server.make_url("")))
        self.browsers.append(browser)
        return browser

    async def agent(self, login: str) -> Browser:
        browser = self.browser()
        reply = await browser.login(login)
        assert reply.status == 200, await reply.text()
        return browser

    @property
    def store(self) -> SupportStore:
        return self.desk.store

    def audit(self) -> list[models.AuditEntry]:
        with Session(self.engine, future=True) as session:
            return list(session.scalars(select(models.AuditEntry).order_by(models.AuditEntry.id)))

    def agent_id(self, login: str) -> int:
        with Session(self.engine, future=True) as session:
            return session.scalar(select(models.Agent.id).where(models.Agent.login == login))

    async def waiting_conversation(
        self, conversation_id: str, question: str = "je veux parler à un conseiller"
    ) -> int:
        """A user asked for a person (the NLU saw `ask_human`), then wrote to the agent."""
        await self.desk.record_exchange(conversation_id, question, TurnNlu("ask_human", 0.97), [])
        await self.desk.request_handoff(conversation_id, REASON_ASKED)
        await self.desk.while_paused(conversation_id, models.WAITING, "je n'arrive pas à voter")
        handoff = self.store.open_handoff_of(conversation_id)
        assert handoff is not None
        return handoff.id


Scenario = Callable[[Bench], Awaitable[None]]


def on_console(scenario: Scenario, rasa_url: str | None = None, kb: bool = False) -> None:
    """Run `scenario` against a gateway on a fresh SQLite file with the four AGENTS."""

    async def main() -> None:
        with tempfile.TemporaryDirectory() as folder:
            engine = create_schema(f"sqlite:///{folder}/bot.db")
            if kb:
                load_kb(engine, KB)
            accounts = Accounts(engine)
            for login, (name, role, active) in AGENTS.items():
                accounts.create_agent(login, name, PASSWORD, role)
                if not active:
                    accounts.set_active(login, False)
            desk = SupportDesk(SupportStore(engine), Knowledge(engine) if kb else None)
            vault = Vault(engine, Fernet.generate_key())
            app = create_app(rasa_url or f"http://127.0.0.1:{free_port()}", vault, desk)
            async with TestServer(app) as server:
                bench = Bench(server, desk, engine)
                try:
                    await scenario(bench)
                finally:
                    for browser in bench.browsers:
                        await browser.http.close()

    asyncio.run(main())


async def error_of(reply: ClientResponse) -> str:
    body = await reply.json()
    assert set(body) == {"error"}, body
    return body["error"]


# ---------------------------------------------------------------------- the page


def test_the_console_page_is_french_with_no_inline_code_and_strict_headers():
    async def scenario(bench: Bench) -> None:
        browser = bench.browser()
        moved = await browser.get("/console", allow_redirects=False)
        assert moved.status == 302 and moved.headers["Location"] == "/console/"
        page = await browser.get("/console/")
        html = await page.text()
        assert page.status == 200 and '<html lang="fr">' in html
        csp = page.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["Referrer-Policy"] == "no-referrer"
        # The CSP allows no inline code: scripts and styles are files, no handler attributes.
        assert re.findall(r"<script[^>]*>", html) == ['<script src="/console/console.js" defer>']
        assert "<style" not in html and " style=" not in html
        assert not re.search(r"\son[a-z]+=", html)
        assert not re.search(r'(?:src|href)="(?:https?:)?//', html)  # nothing from outside
        for asset in ("/console/console.js", "/console/console.css"):
            reply = await browser.get(asset)
            assert reply.status == 200, asset
            assert "frame-ancestors 'none'" in reply.headers["Content-Security-Policy"]
        script = await (await browser.get("/console/console.js")).text()
        for unsafe in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert unsafe not in script, unsafe
        # Not readable from another site: no CORS header, even for an allowed widget origin.
        api = await browser.get("/console/api/me", headers={"Origin": "https://ailleurs.example"})
        assert "Access-Control-Allow-Origin" not in api.headers
        assert api.headers["Cache-Control"] == "no-store"

    on_console(scenario)


# ---------------------------------------------------------------------- who may do what


def test_anonymous_requests_get_401_on_every_console_endpoint():
    async def scenario(bench: Bench) -> None:
        anonymous, forged = bench.browser(), bench.browser()
        forged.http.cookie_jar.update_cookies({console.COOKIE: "x" * 43})
        for method, path, body in ENDPOINTS:
            for browser in (anonymous, forged):
                if method == "GET":
                    reply = await browser.get(path)
                else:
                    reply = await browser.post(path, body, csrf="")
                assert reply.status == 401, (method, path)
                assert await error_of(reply) == console.NOT_LOGGED_IN

    on_console(scenario)


def test_an_analyst_reads_the_statistics_but_not_the_conversations():
    async def scenario(bench: Bench) -> None:
        analyst = await bench.agent("carole")
        me = await (await analyst.get("/console/api/me")).json()
        assert me["agent"] == {
            "id": bench.agent_id("carole"),
            "login": "carole",
            "name": "Carole Analyse",
            "role": "analyst",
        }
        handoff = await bench.waiting_conversation("web-abc")
        assert handoff == 1  # the endpoints above name it
        for method, path, body in ENDPOINTS:
            if path == "/console/api/logout":
                continue  # at the end
            reply = await (analyst.get(path) if method == "GET" else analyst.post(path, body))
            if path in AGENTS_ONLY:
                assert reply.status == 403, path
                assert await error_of(reply) == console.AGENTS_ONLY
            else:
                assert reply.status == 200, (path, await reply.text())
        assert bench.store.open_handoff_of("web-abc").taken_by is None  # nothing was done
        assert bench.store.agents_online() == 0  # an analyst is not an agent on duty
        stats = await (await analyst.get("/console/api/insights?days=7")).json()
        assert stats["totals"]["handoffs"] == 1 and stats["period"]["days"] == 7
        assert re.fullmatch(FRENCH_PERIOD, stats["period"]["label"]), stats["period"]
        png = await (await analyst.get("/console/api/insights/daily.png")).read()
        assert png.startswith(b"\x89PNG")
        candidates = await analyst.get("/console/api/insights/candidates.yml")
        assert candidates.content_type == "application/yaml"
        assert "version:" in await candidates.text()
        bad = await analyst.get("/console/api/insights?days=0")
        assert bad.status == 400 and await error_of(bad) == console.BAD_DAYS
        assert "export_candidates" in [entry.action for entry in bench.audit()]
        assert (await analyst.post("/console/api/logout")).status == 200

    on_console(scenario, kb=True)


def test_every_write_needs_the_session_csrf_token_and_the_console_origin():
    async def scenario(bench: Bench) -> None:
        alice, bruno = await bench.agent("alice"), await bench.agent("bruno")
        handoff = await bench.waiting_conversation("web-abc")
        foreign = {"Origin": "https://ailleurs.example"}
        writes = [
            (f"/console/api/handoffs/{handoff}/take", {}),
            ("/console/api/conversations/web-abc/reply", {"text": "Bonjour"}),
            (f"/console/api/handoffs/{handoff}/release", {}),
            ("/console/api/suggest", {"text": "webmail"}),
            ("/console/api/logout", {}),
        ]
        for path, body in writes:
            for token in ("", "faux-jeton", bruno.csrf):  # none, forged, another session's
                reply = await alice.post(path, body, csrf=token)
                assert reply.status == 403, (path, token)
                assert await error_of(reply) == console.BAD_CSRF
            reply = await alice.post(path, body, headers=foreign)
            assert reply.status == 403, path
            assert await error_of(reply) == console.FOREIGN_ORIGIN
        assert bench.store.open_handoff_of("web-abc").taken_by is None
        assert (await alice.get("/console/api/me")).status == 200  # still signed in
        login = await bench.browser().login("alice", headers=foreign)
        assert login.status == 403 and await error_of(login) == console.FOREIGN_ORIGIN
        # The console's own origin, with the token: done.
        own = {"Origin": str(bench.server.make_url("")).rstrip("/")}
        taken = await alice.post(f"/console/api/handoffs/{handoff}/take", headers=own)
        assert taken.status == 200
        assert bench.store.open_handoff_of("web-abc").taken_by == bench.agent_id("alice")

    on_console(scenario)


# ---------------------------------------------------------------------- signing in


def test_signing_in_sets_a_strict_cookie_whose_token_is_stored_only_hashed():
    async def scenario(bench: Bench) -> None:
        browser = bench.browser()
        reply = await browser.login("alice")
        assert reply.status == 200
        body = await reply.json()
        assert body["agent"]["name"] == "Alice Martin" and body["agent"]["role"] == "agent"
        assert len(body["csrf"]) >= 32
        cookie = reply.cookies[console.COOKIE]
        assert cookie["httponly"] and cookie["samesite"] == "Strict"
        assert cookie["path"] == "/console/" and not cookie["secure"]  # plain http on loopback
        assert int(cookie["max-age"]) == 12 * 3600
        token = cookie.value
        with Session(bench.engine, future=True) as session:
            stored = session.scalars(select(models.AgentSession)).all()
        assert [row.token_hash for row in stored] == [hashlib.sha256(token.encode()).hexdigest()]
        assert stored[0].csrf_token == body["csrf"]
        # Behind a TLS proxy, the cookie is Secure.
        proxied = await bench.browser().login("bruno", headers={"X-Forwarded-Proto": "https"})
        assert proxied.cookies[console.COOKIE]["secure"]

        me = await (await browser.get("/console/api/me")).json()
        assert me["csrf"] == body["csrf"] and me["max_reply_chars"] == 2000
        out = await browser.post("/console/api/logout")
        assert out.status == 200
        assert browser.cookie(console.COOKIE) in (None, "")
        # The old cookie, replayed, is worth nothing any more.
        replay = bench.browser()
        replay.http.cookie_jar.update_cookies({console.COOKIE: token})
        assert (await replay.get("/console/api/me")).status == 401
        actions = [(e.action, e.agent_id) for e in bench.audit()]
        alice = bench.agent_id("alice")
        assert actions == [("login", alice), ("login", bench.agent_id("bruno")), ("logout", alice)]

    on_console(scenario)


def test_wrong_unknown_or_disabled_logins_get_one_answer_and_are_audited_without_password():
    async def scenario(bench: Bench) -> None:
        attempts = [
            ("alice", "pas le bon mot de passe"),
            ("inconnu", "un secret quelconque"),
            ("denis", PASSWORD),  # right password, disabled account
        ]
        for login, password in attempts:
            reply = await bench.browser().login(login, password)
            assert reply.status == 401, login
            assert await error_of(reply) == console.BAD_CREDENTIALS
            assert console.COOKIE not in reply.cookies
        for body in ({"login": "alice"}, {"login": "", "password": "x"}, ["alice", PASSWORD]):
            reply = await bench.browser().http.post("/console/api/login", json=body)
            assert reply.status == 400
        refused = [(e.action, e.agent_id, json.loads(e.detail)) for e in bench.audit()]
        assert refused == [
            ("login_failed", bench.agent_id("alice"), {"reason": "password"}),
            ("login_failed", None, {"reason": "unknown"}),  # the typed login is not kept
            ("login_failed", bench.agent_id("denis"), {"reason": "disabled"}),
        ]
        trail = " ".join(f"{e.detail} {e.conversation_id}" for e in bench.audit())
        for _, password in attempts:
            assert password not in trail
        assert "inconnu" not in trail

    on_console(scenario)


def test_repeated_failed_logins_are_throttled_per_login_and_address_never_for_everyone():
    async def scenario(bench: Bench) -> None:
        for _ in range(5):
            assert (await bench.browser().login("alice", "mauvais mot de passe")).status == 401
        blocked = await bench.browser().login("alice")  # even the right password, from there
        assert blocked.status == 429
        assert "Trop de tentatives" in await error_of(blocked)
        assert (await bench.browser().login("bruno")).status == 200  # another account: fine
        # Alice at her own desk (another address, through the trusted local proxy): the
        # wrong passwords typed elsewhere do not lock her out.
        elsewhere = {"X-Forwarded-For": "198.51.100.20"}
        assert (await bench.browser().login("alice", headers=elsewhere)).status == 200

    on_console(scenario)

    throttle = LoginThrottle(per_login=5, per_address=3, window_seconds=60)
    for login in ("a", "b", "c"):
        assert throttle.attempt(login, "10.0.0.1", now=0) == 0
    assert throttle.attempt("d", "10.0.0.1", now=1) == 59  # one address, many logins
    assert throttle.attempt("d", "10.0.0.2", now=1) == 0
    assert throttle.attempt("d", "10.0.0.1", now=61) == 0  # the window has passed


CONCURRENT_LOGINS = 20


def test_concurrent_wrong_logins_check_no_more_passwords_than_the_limit(monkeypatch):
    """Attempts are counted before the password is checked: twenty wrong logins at once for
    one account from one address get at most five scrypt checks, the others a 429."""
    checks: list[str] = []
    authenticate = Accounts.authenticate

    def counted(self: Accounts, login: str, password: str):
        checks.append(login)
        time.sleep(0.3)  # a loaded server: every attempt arrives while the first are checked
        return authenticate(self, login, password)

    monkeypatch.setattr(Accounts, "authenticate", counted)

    async def scenario(bench: Bench) -> None:
        browsers = [bench.browser() for _ in range(CONCURRENT_LOGINS)]
        # Connected beforehand: the client's address resolution would otherwise wait for the
        # thread pool the checks occupy, and the attempts would arrive one after the other.
        for browser in browsers:
            assert (await browser.get("/console/api/me")).status == 401
        replies = await asyncio.gather(
            *(browser.login("alice", f"mauvais {n}") for n, browser in enumerate(browsers))
        )
        statuses = sorted(reply.status for reply in replies)
        assert statuses == [401] * 5 + [429] * (CONCURRENT_LOGINS - 5)

    on_console(scenario)
    assert len(checks) == 5


# ---------------------------------------------------------------------- the desk


def test_an_agent_takes_a_waiting_web_conversation_replies_and_hands_it_back():
    async def scenario(bench: Bench) -> None:
        voter = bench.browser()
        await voter.get("/api/history")  # the widget's first call: its session cookie
        conversation = sender_id(voter.cookie("sid"))
        handoff = await bench.waiting_conversation(conversation)
        alice, bruno = await bench.agent("alice"), await bench.agent("bruno")

        queue = await (await alice.get("/console/api/queue")).json()
        assert queue["agents_online"] == 2
        [waiting] = queue["handoffs"]
        assert waiting["id"] == handoff and waiting["conversation"] == conversation
        assert waiting["state"] == "waiting" and waiting["reason"] == "demande"
        assert (
            waiting["channel"] == "web" and waiting["last_user_text"] == "je n'arrive pas à voter"
        )
        assert 0 <= waiting["age_seconds"] < 60 and waiting["created_at"].endswith("Z")

        opened = await (await alice.get(f"/console/api/conversations/{conversation}")).json()
        assert opened["conversation"]["state"] == "waiting"
        assert opened["handoff"]["id"] == handoff
        asked, notice, wrote = opened["turns"]
        assert asked["role"] == "user" and asked["text"] == "je veux parler à un conseiller"
        assert (asked["intent"], asked["confidence"]) == ("ask_human", 0.97)
        assert notice["role"] == "system" and wrote["role"] == "user"
        assert wrote["intent"] is None  # not seen by the assistant: it is paused
        assert opened["last"] == wrote["id"]
        # The console's poll for newer turns is a read of the conversation too: audited.
        polled = await alice.get(f"/console/api/conversations/{conversation}?after={wrote['id']}")
        assert (await polled.json())["turns"] == []

        taken = await alice.post(f"/console/api/handoffs/{handoff}/take")
        assert taken.status == 200
        assert (await taken.json())["handoff"]["mine"] is True
        other = await (await bruno.get("/console/api/queue")).json()
        assert other["handoffs"][0]["state"] == "agent"
        assert other["handoffs"][0]["taken_by_name"] == "Alice Martin"
        assert other["handoffs"][0]["mine"] is False
        for path, body in (
            (f"/console/api/handoffs/{handoff}/take", {}),
            (f"/console/api/conversations/{conversation}/reply", {"text": "Moi aussi"}),
            (f"/console/api/handoffs/{handoff}/release", {}),
        ):
            reply = await bruno.post(path, body)
            assert reply.status == 409, path
            assert await error_of(reply) == "Alice Martin a déjà pris cette conversation."

        seen = await (await voter.get(f"/api/history?after={opened['last']}")).json()
        assert seen["state"] == "agent"
        assert [m["text"] for m in seen["messages"]] == [wording.taken("Alice Martin")]

        answer = "Bonjour, je regarde votre situation : quel est votre académie ?"
        sent = await alice.post(
            f"/console/api/conversations/{conversation}/reply", {"text": answer}
        )
        assert sent.status == 200
        turn = (await sent.json())["turn"]
        assert turn["role"] == "agent" and turn["agent"] == "Alice Martin"
        later = await (await voter.get(f"/api/history?after={seen['last']}")).json()
        assert later["messages"] == [
            {"id": turn["id"], "sender": "agent", "text": answer, "agent": "Alice Martin"}
        ]

        back = await alice.post(f"/console/api/handoffs/{handoff}/release")
        assert back.status == 200 and (await back.json())["handoff"]["state"] == "closed"
        final = await (await voter.get(f"/api/history?after={later['last']}")).json()
        assert final["state"] == "bot" and final["messages"][-1]["text"] == wording.RELEASED
        assert (await (await alice.get("/console/api/queue")).json())["handoffs"] == []
        too_late = await alice.post(
            f"/console/api/conversations/{conversation}/reply", {"text": "Encore un mot"}
        )
        assert too_late.status == 409 and await error_of(too_late) == console.NOT_WAITING
        again = await alice.post(f"/console/api/handoffs/{handoff}/take")
        assert again.status == 409 and await error_of(again) == console.ALREADY_CLOSED

        alice_id = bench.agent_id("alice")
        trail = [
            (e.action, e.conversation_id, e.detail) for e in bench.audit() if e.agent_id == alice_id
        ]
        assert trail == [
            ("login", None, None),
            ("read", conversation, json.dumps({"after": 0})),
            ("read", conversation, json.dumps({"after": wrote["id"]})),
            ("take", conversation, json.dumps({"handoff": handoff})),
            ("reply", conversation, json.dumps({"chars": len(answer)})),
            ("release", conversation, json.dumps({"handoff": handoff})),
        ]

    on_console(scenario)


def test_an_agent_reply_reaches_a_telegram_user_through_the_channel_and_is_stored_redacted():
    async def scenario(bench: Bench) -> None:
        delivered: list[tuple[dict, list[dict]]] = []

        async def telegram(conversation, messages) -> None:
            delivered.append((conversation.address, messages))

        bench.desk.register_delivery("telegram", telegram)
        bench.store.ensure_conversation("tg-4242", "telegram", {"chat_id": 4242})
        handoff = await bench.waiting_conversation("tg-4242")
        alice = await bench.agent("alice")
        assert (await alice.post(f"/console/api/handoffs/{handoff}/take")).status == 200
        answer = "Je vous rappelle au 06 12 34 56 78 si besoin."
        sent = await alice.post("/console/api/conversations/tg-4242/reply", {"text": answer})
        assert sent.status == 200
        assert delivered == [
            ({"chat_id": 4242}, [{"text": wording.taken("Alice Martin")}]),
            ({"chat_id": 4242}, [{"text": answer}]),  # as written, to the user
        ]
        stored = (await sent.json())["turn"]["text"]
        assert "06 12 34 56 78" not in stored and "Je vous rappelle" in stored  # kept redacted
        queue = await (await alice.get("/console/api/queue")).json()
        assert queue["handoffs"][0]["channel"] == "telegram"

    on_console(scenario)


def test_replies_are_checked_before_they_reach_anyone():
    async def scenario(bench: Bench) -> None:
        handoff = await bench.waiting_conversation("web-abc")
        alice = await bench.agent("alice")
        path = "/console/api/conversations/web-abc/reply"
        before_take = await alice.post(path, {"text": "Bonjour"})
        assert before_take.status == 409 and await error_of(before_take) == console.TAKE_FIRST
        assert (await alice.post(f"/console/api/handoffs/{handoff}/take")).status == 200
        cases = [
            ({"text": ""}, 400, console.EMPTY_REPLY),
            ({"text": " \n\t\x00 "}, 400, console.EMPTY_REPLY),
            ({"text": "x" * 2001}, 413, console.REPLY_TOO_LONG),
            ({"text": 42}, 400, console.BAD_REQUEST),
            (["Bonjour"], 400, console.BAD_REQUEST),
        ]
        for body, status, message in cases:
            reply = await alice.post(path, body)
            assert reply.status == status, body
            assert await error_of(reply) == message
        broken = await alice.http.post(
            path, data="{pas du json", headers={"X-CSRF-Token": alice.csrf}
        )
        assert broken.status == 400
        huge = await alice.http.post(path, data="x" * 100_000, headers={"X-CSRF-Token": alice.csrf})
        assert huge.status == 413 and await error_of(huge) == console.REPLY_TOO_LONG
        unknown = await alice.post("/console/api/conversations/web-personne/reply", {"text": "?"})
        assert unknown.status == 404 and await error_of(unknown) == console.NO_CONVERSATION
        odd = await alice.get("/console/api/conversations/web%3Cscript%3E")
        assert odd.status == 404
        assert (await alice.post("/console/api/handoffs/999/take")).status == 404
        agent_turns = [t for t in bench.store.transcript("web-abc") if t.role == "agent"]
        assert agent_turns == []
        ok = await alice.post(path, {"text": "x" * 2000})
        assert ok.status == 200

    on_console(scenario)


def test_two_agents_taking_the_same_conversation_at_once_one_gets_it():
    async def scenario(bench: Bench) -> None:
        handoff = await bench.waiting_conversation("web-abc")
        alice, bruno = await bench.agent("alice"), await bench.agent("bruno")
        path = f"/console/api/handoffs/{handoff}/take"
        replies = await asyncio.gather(alice.post(path), bruno.post(path))
        assert sorted(r.status for r in replies) == [200, 409]
        winner = bench.store.open_handoff_of("web-abc").taken_by
        assert winner in (bench.agent_id("alice"), bench.agent_id("bruno"))
        takes = [e for e in bench.audit() if e.action == "take"]
        assert [e.agent_id for e in takes] == [winner]

    on_console(scenario)


def test_the_queue_is_live_over_server_sent_events(monkeypatch):
    monkeypatch.setattr(console, "HEARTBEAT_SECONDS", 0.3)

    async def scenario(bench: Bench) -> None:
        alice = await bench.agent("alice")
        with Session(bench.engine, future=True) as session, session.begin():
            session.execute(
                update(models.Agent).values(last_seen_at=datetime.utcnow() - timedelta(minutes=10))
            )
        assert bench.store.agents_online() == 0
        stream = await alice.get("/console/api/events")
        assert stream.status == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        assert stream.headers["Cache-Control"] == "no-store"

        async def next_lines(count: int) -> list[str]:
            lines: list[str] = []
            while len(lines) < count:
                raw = await asyncio.wait_for(stream.content.readline(), 5)
                if raw.strip():
                    lines.append(raw.decode().strip())
            return lines

        assert await next_lines(1) == ["retry: 3000"]
        handoff = await bench.waiting_conversation("web-abc")
        # Heartbeats (": ping") may come between events on a loaded machine: skip them here.
        data: list[str] = []
        while len(data) < 2:
            data += [line for line in await next_lines(1) if line.startswith("data: ")]
        events = [json.loads(line[len("data: ") :]) for line in data]
        assert events[0] == {"type": "handoff", "handoff": handoff, "conversation": "web-abc"}
        assert events[1]["type"] == "turn" and events[1]["conversation"] == "web-abc"
        assert "text" not in json.dumps(events)  # ids only: the page fetches what it may see
        while (await next_lines(1))[0] != ": ping":
            pass
        # The heartbeat counts the agent as online (the users' "a person will answer").
        assert bench.store.agents_online() == 1
        # Signed out elsewhere: the stream says so and ends.
        await alice.post("/console/api/logout")
        while (await next_lines(1))[0] != "event: logout":
            pass
        await asyncio.wait_for(stream.content.read(), 5)
        assert stream.content.at_eof()

    on_console(scenario)


def test_disabling_an_account_ends_its_sessions_at_once():
    async def scenario(bench: Bench) -> None:
        alice = await bench.agent("alice")
        assert (await alice.get("/console/api/queue")).status == 200
        Accounts(bench.engine).set_active("alice", False)
        assert (await alice.get("/console/api/queue")).status == 401
        assert (await bench.browser().login("alice")).status == 401

    on_console(scenario)


# ---------------------------------------------------------------------- what agents read

FRENCH_DAY = r"(?:1er|[1-9]|[12]\d|3[01]) (?:janvier|février|mars|avril|mai|juin|juillet|août|septembre|octobre|novembre|décembre) \d{4}"  # noqa: E501
FRENCH_PERIOD = rf"Du {FRENCH_DAY} au {FRENCH_DAY}"
XSS_VOTER = "Bonjour <img src=x onerror=alert(1)> voyez [x](javascript:alert(1)) **merci**"
ANSWER = (
    "**Lyon** : messagerie professionnelle **webmail.ac-lyon.fr**\n"
    "\n"
    "Pour créer votre mot de passe :\n"
    "1. Allez sur https://elections2018.education.gouv.fr/portail/identification.htm\n"
    "2. Suivez le [guide](https://www.education.gouv.fr/guide).\n"
    "- une minuscule ;\n"
    "- un chiffre."
)


def runs_of(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    lines = []
    for block in blocks:
        items = block["items"] if block["type"] == "list" else [block["lines"]]
        lines += [line for item in items for line in item]
    return [run for line in lines for run in line]


def stamp(bench: Bench, conversation_id: str, at: datetime) -> None:
    """Date the conversation and all its turns `at` (naive UTC, as stored)."""
    with Session(bench.engine, future=True) as session:
        session.execute(
            update(models.Turn).where(models.Turn.conversation_id == conversation_id).values(at=at)
        )
        session.execute(
            update(models.Conversation)
            .where(models.Conversation.id == conversation_id)
            .values(started_at=at)
        )
        session.commit()


def test_topics_are_named_in_french_and_dates_and_times_written_out_in_paris_time():
    async def scenario(bench: Bench) -> None:
        await bench.desk.record_exchange(
            "web-fr", "webmail lyon", TurnNlu("webmail_access", 0.9), [{"text": "Voici."}]
        )
        await bench.desk.record_exchange(
            "web-fr", "blablabla", TurnNlu("nlu_fallback", 0.3), [{"text": "Pardon ?"}]
        )
        await bench.desk.record_exchange("web-fr", "merci", TurnNlu("thank", 0.99), [])
        await bench.desk.record_exchange(
            "web-fr", "un conseiller svp", TurnNlu("ask_human", 0.97), []
        )
        await bench.desk.request_handoff("web-fr", REASON_ASKED)
        stamp(bench, "web-fr", datetime(2026, 11, 8, 13, 5))  # 14 h 05 in Paris (UTC+1)
        alice = await bench.agent("alice")

        [waiting] = (await (await alice.get("/console/api/queue")).json())["handoffs"]
        assert waiting["last_intent"] == "ask_human"
        assert waiting["last_topic"] == "Demande à parler à une personne"
        opened = await (await alice.get("/console/api/conversations/web-fr")).json()
        assert opened["conversation"]["started_day"] == "8 novembre 2026"
        assert opened["conversation"]["started_time"] == "14 h 05"
        users = [t for t in opened["turns"] if t["role"] == "user"]
        assert [(t["intent"], t["topic"]) for t in users] == [
            ("webmail_access", "Se connecter à sa messagerie professionnelle"),  # the KB's title
            ("nlu_fallback", "Question non comprise"),
            ("thank", "Remerciement"),
            ("ask_human", "Demande à parler à une personne"),
        ]
        assert {(t["day"], t["time"]) for t in opened["turns"]} == {("8 novembre 2026", "14 h 05")}
        stamp(bench, "web-fr", datetime(2026, 7, 1, 7, 0))  # summer time: UTC+2
        later = await (await alice.get("/console/api/conversations/web-fr")).json()
        first = later["turns"][0]
        assert (first["day"], first["time"]) == ("1er juillet 2026", "9 h 00")

    on_console(scenario, kb=True)


def test_every_intent_has_a_french_name_in_one_place():
    from bot.knowledge import topics

    rasa = topics.read_rasa_files(REPO_ROOT)
    names = topics.topic_names(
        (answer.key, answer.title) for answer in read_kb(REPO_ROOT / topics.KB_FILE).answers
    )
    for intent in rasa.intents | {"nlu_fallback"}:
        assert intent in names and names[intent] != intent, intent
    assert names["ask_human"] == "Demande à parler à une personne"
    assert names["what_is_numen"] == "Qu'est-ce que le NUMEN ?"


def test_the_assistants_markdown_comes_as_blocks_and_a_voters_text_stays_text():
    async def scenario(bench: Bench) -> None:
        await bench.desk.record_exchange(
            "web-md", "webmail lyon", TurnNlu("webmail_access", 0.9), [{"text": ANSWER}]
        )
        handoff = await bench.waiting_conversation("web-md")
        await bench.desk.while_paused("web-md", models.WAITING, XSS_VOTER)
        alice = await bench.agent("alice")
        assert (await alice.post(f"/console/api/handoffs/{handoff}/take")).status == 200
        pasted = f"Je cite : {XSS_VOTER}"  # an agent quoting the voter
        assert (
            await alice.post("/console/api/conversations/web-md/reply", {"text": pasted})
        ).status == 200
        opened = await (await alice.get("/console/api/conversations/web-md")).json()
        turns = opened["turns"]

        # The voter's message: as typed, no blocks: the page shows it with textContent.
        voter = next(t for t in turns if t["role"] == "user" and t["text"].startswith("Bonjour"))
        assert voter["text"] == XSS_VOTER and "blocks" not in voter

        answer = next(t for t in turns if t["role"] == "bot" and t["text"] == ANSWER)
        paragraph, steps, bullets = answer["blocks"][0], answer["blocks"][2], answer["blocks"][3]
        assert paragraph["lines"][0] == [
            {"text": "Lyon", "bold": True},
            {"text": " : messagerie professionnelle "},
            {"text": "webmail.ac-lyon.fr", "href": "https://webmail.ac-lyon.fr", "bold": True},
        ]
        assert steps["ordered"] and len(steps["items"]) == 2 and not bullets["ordered"]
        assert [(r["text"], r["href"]) for r in runs_of(answer["blocks"]) if "href" in r] == [
            ("webmail.ac-lyon.fr", "https://webmail.ac-lyon.fr"),
            (
                "https://elections2018.education.gouv.fr/portail/identification.htm",
                "https://elections2018.education.gouv.fr/portail/identification.htm",
            ),
            ("guide", "https://www.education.gouv.fr/guide"),
        ]

        # Rendered turns (an agent's, the desk's notices) keep any HTML as text, and no
        # link but to http(s) or mailto comes out of them.
        quoted = next(t for t in turns if t["role"] == "agent")
        assert [r["text"] for r in runs_of(quoted["blocks"])] == [
            "Je cite : Bonjour <img src=x onerror=alert(1)> voyez [x](javascript:alert(1)) ",
            "merci",
        ]
        hrefs = [r["href"] for t in turns for r in runs_of(t.get("blocks", [])) if "href" in r]
        assert len(hrefs) == 3  # the answer's
        assert all(href.startswith(("https://", "http://", "mailto:")) for href in hrefs)

    on_console(scenario)


# ---------------------------------------------------------------------- the copilot


class FakeRasaParse:
    """Rasa's NLU-only endpoint, on loopback: it understands the webmail of Lyon."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def parse(self, request: web.Request) -> web.Response:
        text = (await request.json())["text"]
        self.asked.append(text)
        return web.json_response(
            {
                "intent": {"name": "webmail_access", "confidence": 0.93},
                "intent_ranking": [
                    {"name": "webmail_access", "confidence": 0.93},
                    {"name": "creation_email_not_received", "confidence": 0.05},
                ],
                "entities": [{"entity": "academie", "value": "Lyon"}],
            }
        )


def test_the_copilot_suggests_knowledge_base_answers_for_a_text_or_a_user_turn():
    fake = FakeRasaParse()

    async def scenario(bench: Bench) -> None:
        app = web.Application()
        app.router.add_post("/webhooks/gateway/parse", fake.parse)
        async with TestServer(app, port=rasa_port):
            handoff = await bench.waiting_conversation(
                "web-abc", "ma messagerie de Lyon marche pas"
            )
            alice = await bench.agent("alice")
            reply = await alice.post("/console/api/suggest", {"text": "webmail Lyon"})
            assert reply.status == 200, await reply.text()
            body = await reply.json()
            assert body["nlu"] is True
            top = body["suggestions"][0]
            assert top["key"] == "webmail_access" and top["confidence"] == 0.93
            assert top["source"] == "Se connecter à sa messagerie professionnelle"
            assert "webmail.ac-lyon.fr" in top["text"]
            assert 1 <= len(body["suggestions"]) <= 3
            assert any(lookup["kind"] == "webmail" for lookup in body["lookups"])
            # Shown formatted; « Modifier » puts the plain text in the reply box.
            lyon = next(lookup for lookup in body["lookups"] if lookup["kind"] == "webmail")
            assert lyon["text"].startswith("**Lyon** : messagerie professionnelle")
            assert lyon["plain"].startswith("Lyon : messagerie professionnelle webmail.ac-lyon.fr")
            assert lyon["blocks"][0]["lines"][0][0] == {"text": "Lyon", "bold": True}
            for answer in (*body["suggestions"], *body["lookups"]):
                assert "**" not in answer["plain"] and "\n- " not in answer["plain"]
                texts = "".join(r["text"] for r in runs_of(answer["blocks"]))
                assert "**" not in texts
            links = [r["href"] for r in runs_of(top["blocks"]) if "href" in r]
            assert links and all(href.startswith(("https://", "http://")) for href in links)

            turns = bench.store.transcript("web-abc")
            asked = next(t for t in turns if t.role == "user")
            by_turn = await alice.post(
                "/console/api/suggest", {"conversation": "web-abc", "turn": asked.id}
            )
            assert by_turn.status == 200
            assert fake.asked[-1] == "ma messagerie de Lyon marche pas"
            notice = next(t for t in turns if t.role == "system")
            not_user = await alice.post(
                "/console/api/suggest", {"conversation": "web-abc", "turn": notice.id}
            )
            assert not_user.status == 404 and await error_of(not_user) == console.NO_TURN
            assert (await alice.post("/console/api/suggest", {"text": " "})).status == 400
            assert (
                bench.store.open_handoff_of("web-abc").id == handoff
            )  # suggesting changes nothing
            suggested = [e for e in bench.audit() if e.action == "suggest"]
            assert [json.loads(e.detail) for e in suggested] == [
                {"chars": len("webmail Lyon")},
                {"chars": len("ma messagerie de Lyon marche pas")},
            ]

    rasa_port = free_port()
    on_console(scenario, rasa_url=f"http://127.0.0.1:{rasa_port}", kb=True)


# ---------------------------------------------------------------------- accounts


def test_passwords_are_hashed_with_scrypt_a_random_salt_and_their_parameters():
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first != second  # a salt of its own
    scheme, n, r, p, salt, _ = first.split("$")
    assert (scheme, n, r, p) == ("scrypt", "32768", "8", "1")
    assert PASSWORD not in first
    assert verify_password(PASSWORD, first) and verify_password(PASSWORD, second)
    assert not verify_password(PASSWORD + " ", first)
    assert not verify_password(PASSWORD, first.replace("scrypt", "md5", 1))
    assert not verify_password(PASSWORD, "scrypt$pas$un$hash")
    # Parameters are read from the stored hash: an older, cheaper hash still verifies.
    old = "scrypt$1024$8$1$" + salt + "$"
    from bot.support.accounts import _b64, _scrypt, _unb64

    old += _b64(_scrypt(PASSWORD, _unb64(salt), 1024, 8, 1, 32))
    assert verify_password(PASSWORD, old)


def test_a_login_costs_one_password_hash_whether_or_not_the_account_exists(monkeypatch, tmp_path):
    accounts = Accounts(create_schema(f"sqlite:///{tmp_path / 'bot.db'}"))
    accounts.create_agent("alice", "Alice Martin", PASSWORD)
    accounts.create_agent("denis", "Denis Parti", PASSWORD)
    accounts.set_active("denis", False)
    calls: list[int] = []
    real = accounts_module.hashlib.scrypt

    def counting(*args: Any, **kwargs: Any) -> bytes:
        calls.append(kwargs["n"])
        return real(*args, **kwargs)

    monkeypatch.setattr(accounts_module.hashlib, "scrypt", counting)
    for login, password, refused in [
        ("alice", PASSWORD, None),
        ("alice", "mauvais", "password"),
        ("personne", PASSWORD, "unknown"),
        ("denis", PASSWORD, "disabled"),
    ]:
        calls.clear()
        assert accounts.authenticate(login, password).refused == refused
        assert calls == [accounts_module.SCRYPT_N], login


def test_sessions_expire_after_twelve_hours(tmp_path):
    now = [datetime(2024, 11, 30, 8, 0)]
    accounts = Accounts(create_schema(f"sqlite:///{tmp_path / 'bot.db'}"), clock=lambda: now[0])
    agent = accounts.create_agent("alice", "Alice Martin", PASSWORD)
    token, session = accounts.open_session(agent.id)
    assert session.expires_at == datetime(2024, 11, 30, 20, 0)
    now[0] = datetime(2024, 11, 30, 19, 59)
    assert accounts.session_for(token) is not None
    assert accounts.session_for(token + "x") is None
    now[0] = datetime(2024, 11, 30, 20, 0)
    assert accounts.session_for(token) is None


def test_account_rules_are_explained_in_french(tmp_path):
    accounts = Accounts(create_schema(f"sqlite:///{tmp_path / 'bot.db'}"))
    with pytest.raises(AccountError, match="trop court"):
        accounts.create_agent("alice", "Alice", "court")
    with pytest.raises(AccountError, match="Identifiant invalide"):
        accounts.create_agent("Alice Martin!", "Alice", PASSWORD)
    with pytest.raises(AccountError, match="Rôle inconnu"):
        accounts.create_agent("alice", "Alice", PASSWORD, "admin")
    accounts.create_agent("Alice", "Alice Martin", PASSWORD)
    with pytest.raises(AccountError, match="existe déjà"):
        accounts.create_agent("alice", "Une autre", PASSWORD)
    with pytest.raises(AccountError, match="Aucun compte"):
        accounts.set_active("personne", False)


def test_the_command_line_creates_lists_and_disables_accounts(tmp_path):
    env = {**os.environ, "BOT_DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}"}

    def run(*args: str, password: str = PASSWORD) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "bot.support", "agent", *args],
            cwd=REPO_ROOT,
            env={**env, "AGENT_PASSWORD": password},
            capture_output=True,
            text=True,
            timeout=60,
        )

    short = run("add", "alice", "--name", "Alice Martin", password="trop court")
    assert short.returncode == 1 and "Mot de passe trop court" in short.stderr
    added = run("add", "alice", "--name", "Alice Martin")
    assert added.returncode == 0, added.stderr
    assert "Compte « alice » créé (conseiller, Alice Martin)" in added.stdout
    assert run("add", "carole", "--name", "Carole", "--role", "analyst").returncode == 0
    twice = run("add", "alice", "--name", "Alice bis")
    assert twice.returncode == 1 and "existe déjà" in twice.stderr
    listed = run("list").stdout.splitlines()
    assert listed[0].split("\t")[:4] == ["alice", "Alice Martin", "conseiller", "actif"]
    assert listed[1].split("\t")[:4] == ["carole", "Carole", "analyste", "actif"]
    assert PASSWORD not in Path(tmp_path / "bot.db").read_bytes().decode("latin-1")
    disabled = run("disable", "alice")
    assert disabled.returncode == 0 and "désactivé" in disabled.stdout
    assert run("list").stdout.splitlines()[0].split("\t")[3] == "désactivé"
    unknown = run("disable", "personne")
    assert unknown.returncode == 1 and "Aucun compte" in unknown.stderr
    accounts = Accounts(make_engine(env["BOT_DATABASE_URL"]))
    assert accounts.authenticate("alice", PASSWORD).refused == "disabled"
    assert accounts.authenticate("carole", PASSWORD).agent.role == "analyst"
