"""Two gateways behind nginx in the production mode, sharing their state in Redis: one voter's
conversation may go through either gateway at each message, and nothing is lost, doubled,
reordered or let through a limit; an agent on one gateway answers a voter on the other; a Slack
retry reaching the other gateway runs nothing twice.

The live test starts the whole production stack (2 Rasa replicas, 2 gateways, nginx) with the
trained model; the fast tests check nginx's configuration with two real gateway processes."""

from __future__ import annotations

import csv
import itertools
import json
import os
import queue
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
import requests
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text

from bot.channels.slack import signature
from bot.db import make_engine
from bot.gateway.app import sender_id
from bot.local_stack import TEST_LIMITS, free_port, gateway_python, wait_for
from bot.portal.registry import DEMO_CSV
from bot.production.proxy import proxy_command
from bot.production.stack import ProductionStack
from bot.support.accounts import Accounts
from tests.conftest import redis_url, texts, throwaway_postgres

REDIS_DB = 12  # this file's own Redis database
SLACK_TOKEN, SLACK_SECRET = "xoxb-test", "slack-signing-secret-for-tests"
PASSWORD = "une phrase de passe solide"
A, B = 0, 1  # the two gateways
BURST = 12  # each conversation's burst in this test (and 1 message a minute after it)
QUESTIONS = ["quand est-ce qu'on vote ?", "quelles sont les règles du mot de passe ?",
             "bonjour", "je suis AESH, je vote pour quoi ?"]  # fmt: skip


# --------------------------------------------------------------------------- a fake Slack API


class LoopbackServer(ThreadingHTTPServer):
    """A real HTTP server on a free loopback port, served from a thread while in `running()`."""

    @contextmanager
    def running(self) -> Iterator[LoopbackServer]:
        thread = threading.Thread(target=self.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.shutdown()
            self.server_close()


class FakeSlack(LoopbackServer):
    """Slack's Web API on loopback: records each `chat.postMessage` and says ok."""

    def __init__(self) -> None:
        self.posts: list[dict] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler) -> None:
                body = handler.rfile.read(int(handler.headers["Content-Length"]))
                self.posts.append({"path": handler.path, **json.loads(body)})
                answer = b'{"ok": true}'
                handler.send_response(200)
                handler.send_header("Content-Type", "application/json")
                handler.send_header("Content-Length", str(len(answer)))
                handler.end_headers()
                handler.wfile.write(answer)

            def log_message(handler, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/api"


def slack_headers(body: bytes, retry: int | None = None) -> dict[str, str]:
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature(SLACK_SECRET, timestamp, body),
    }
    if retry is not None:  # Slack signs each retry again
        headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
    return headers


# --------------------------------------------------------------------------- helpers


class Voter:
    """One browser: its cookie goes to whichever gateway it talks to."""

    def __init__(self, stack: ProductionStack) -> None:
        self.stack = stack
        self.http = requests.Session()

    def say(self, gateway: int, message: str) -> requests.Response:
        url = f"{self.stack.gateway_urls[gateway]}/api/chat"
        return self.http.post(url, json={"message": message}, timeout=120)

    def history(self, gateway: int, after: int = 0) -> dict:
        url = f"{self.stack.gateway_urls[gateway]}/api/history?after={after}"
        return self.http.get(url, timeout=30).json()

    @property
    def sender(self) -> str:
        return sender_id(self.http.cookies["sid"])


def user_texts(tracker_url: str, sender: str) -> list[str]:
    """What Rasa received from `sender`, in the order its tracker recorded it."""
    engine = create_engine(tracker_url, future=True)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT data FROM events WHERE sender_id = :s AND type_name = 'user' ORDER BY id"),
            {"s": sender},
        ).scalars()
        said = [json.loads(row).get("text", "") for row in rows]
    engine.dispose()
    return said


def sse_lines(response: requests.Response) -> queue.Queue:
    """The data lines of a server-sent event stream, read in a thread."""
    lines: queue.Queue = queue.Queue()

    def read() -> None:
        try:
            for line in response.iter_lines(decode_unicode=True):
                if line and line.startswith("data: "):
                    lines.put(json.loads(line[len("data: ") :]))
        except (requests.RequestException, AttributeError, ValueError):
            pass  # the stream was closed at the end of the test

    threading.Thread(target=read, daemon=True).start()
    return lines


def next_event(lines: queue.Queue, kind: str, conversation: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        event = lines.get(timeout=left)
        if event.get("type") == kind and event.get("conversation") == conversation:
            return event
    raise AssertionError(f"no {kind} event for {conversation}")


# --------------------------------------------------------------------------- the live test


@pytest.mark.live
def test_two_gateways_behind_nginx_share_conversations_limits_handoffs_and_slack_retries(
    tmp_path: Path,
) -> None:
    from bot.training import ensure_model

    redis.Redis.from_url(redis_url(REDIS_DB)).flushdb()  # this file's own database
    with (
        throwaway_postgres("gateways") as bot_db,
        throwaway_postgres("gateways_tracker") as tracker_db,
        throwaway_postgres("gateways_portal") as portal_db,
        FakeSlack().running() as slack,
    ):
        stack = ProductionStack(
            tmp_path,
            ensure_model(),
            replicas=2,
            gateways=2,
            env={
                "BOT_DATABASE_URL": bot_db,
                "TRACKER_DATABASE_URL": tracker_db,
                "PORTAL_DATABASE_URL": portal_db,
                "REDIS_URL": redis_url(REDIS_DB),
                **TEST_LIMITS,
                "GATEWAY_RATE_PER_MINUTE": "1",
                "GATEWAY_RATE_BURST": str(BURST),
                "LOCK_ACQUIRE_TIMEOUT_SECONDS": "60",
                "SLACK_BOT_TOKEN": SLACK_TOKEN,
                "SLACK_SIGNING_SECRET": SLACK_SECRET,
                "SLACK_API_URL": slack.url,
                "BOT_NOW": "2018-11-30T12:00",  # reissues are open during the vote
            },
        )
        try:
            stack.start()
            assert requests.get(f"{stack.gateway_url}/health", timeout=10).ok  # through nginx
            _one_conversation_through_both_gateways(stack, tracker_db)
            _a_burst_through_both_gateways_is_served_once_each_in_one_order(stack, tracker_db)
            _the_rate_limit_holds_across_both_gateways(stack)
            _an_agent_on_one_gateway_answers_a_voter_on_the_other(stack, bot_db)
            _a_slack_retry_at_the_other_gateway_runs_nothing_twice(stack, slack, tracker_db)
            _a_reissue_across_both_gateways_leaves_no_personal_value_in_redis(stack)
            for name in ("gateway-0", "gateway-1"):
                log = (stack.logs / f"{name}.log").read_text(errors="replace")
                assert "Traceback" not in log, log[-3000:]
        finally:
            stack.stop()


def _one_conversation_through_both_gateways(stack: ProductionStack, tracker_db: str) -> None:
    """A button offered by gateway A is recognised by gateway B; each message once, in order."""
    voter = Voter(stack)
    asked = voter.say(A, "webmail")
    assert asked.status_code == 200, asked.text
    nantes = next(
        b for m in asked.json()["messages"] for b in m.get("buttons", []) if b["title"] == "Nantes"
    )
    answered = voter.say(B, nantes["payload"])  # a click, at the other gateway
    assert answered.status_code == 200
    assert "webmel.ac-nantes.fr" in texts(answered.json()["messages"])
    sent = [f"{QUESTIONS[i % len(QUESTIONS)]} s{i}" for i in range(6)]
    for i, message in enumerate(sent):
        reply = voter.say(i % 2, message)
        assert reply.status_code == 200 and reply.json()["messages"], reply.text
    shown = [m["text"] for m in voter.history(A)["messages"] if m["sender"] == "user"]
    assert shown == ["webmail", "Nantes", *sent]
    assert user_texts(tracker_db, voter.sender) == ["webmail", nantes["payload"], *sent]


def _a_burst_through_both_gateways_is_served_once_each_in_one_order(
    stack: ProductionStack, tracker_db: str
) -> None:
    """10 messages of one conversation sent at once, alternately to A and B: each reaches Rasa
    once, is answered once, and our transcript has them in the same order as Rasa's tracker
    (one turn at a time across the gateways)."""
    voter = Voter(stack)
    assert voter.history(A)["messages"] == []  # gets the cookie
    cookie = {"sid": voter.http.cookies["sid"]}
    sent = [f"{QUESTIONS[i % len(QUESTIONS)]} b{i}" for i in range(10)]

    def send(i: int) -> requests.Response:
        url = f"{stack.gateway_urls[i % 2]}/api/chat"
        return requests.post(url, json={"message": sent[i]}, cookies=cookie, timeout=120)

    with ThreadPoolExecutor(max_workers=10) as pool:
        replies = list(pool.map(send, range(10)))
    assert [r.status_code for r in replies] == [200] * 10
    assert all(r.json()["messages"] for r in replies)
    in_rasa = user_texts(tracker_db, voter.sender)
    assert sorted(in_rasa) == sorted(sent)  # each once
    history = voter.history(B)["messages"]
    assert [m["text"] for m in history if m["sender"] == "user"] == in_rasa
    roles = [m["sender"] for m in history]
    # Each question is followed by its own answers, never by another question's.
    assert all(a != "user" or b == "bot" for a, b in itertools.pairwise(roles))


def _the_rate_limit_holds_across_both_gateways(stack: ProductionStack) -> None:
    voter = Voter(stack)
    voter.history(A)
    cookie = {"sid": voter.http.cookies["sid"]}

    def send(i: int) -> int:
        url = f"{stack.gateway_urls[i % 2]}/api/chat"
        reply = requests.post(url, json={"message": f"bonjour r{i}"}, cookies=cookie, timeout=120)
        return reply.status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(send, range(BURST + 4)))
    assert sorted(statuses) == [200] * BURST + [429] * 4, statuses
    assert {statuses[i] for i in range(0, len(statuses), 2)} >= {200}  # both gateways served
    assert {statuses[i] for i in range(1, len(statuses), 2)} >= {200}


def _an_agent_on_one_gateway_answers_a_voter_on_the_other(stack: ProductionStack, bot_db: str):
    engine = make_engine(bot_db)
    Accounts(engine).create_agent("alice", "Alice Martin", PASSWORD)
    engine.dispose()
    agent = requests.Session()
    login = agent.post(
        f"{stack.gateway_urls[A]}/console/api/login",
        json={"login": "alice", "password": PASSWORD},
        timeout=30,
    )
    assert login.status_code == 200, login.text
    csrf = {"X-CSRF-Token": login.json()["csrf"]}
    stream = agent.get(f"{stack.gateway_urls[A]}/console/api/events", stream=True, timeout=120)
    events = sse_lines(stream)
    try:
        time.sleep(1)  # the stream is subscribed
        voter = Voter(stack)
        asked = voter.say(B, "je veux parler à un conseiller")
        assert asked.json()["state"] == "waiting", asked.text
        conversation = voter.sender
        handoff = next_event(events, "handoff", conversation)["handoff"]  # published by B
        taken = agent.post(
            f"{stack.gateway_urls[A]}/console/api/handoffs/{handoff}/take", json={}, headers=csrf
        )
        assert taken.status_code == 200, taken.text
        last = asked.json()["last"]
        assert voter.say(B, "vous êtes là ?").status_code == 200
        next_event(events, "turn", conversation)  # the voter's message at B, live at A
        words = "Bonjour, je suis Alice : je regarde votre dossier."
        replied = agent.post(
            f"{stack.gateway_urls[A]}/console/api/conversations/{conversation}/reply",
            json={"text": words},
            headers=csrf,
        )
        assert replied.status_code == 200, replied.text
        polled = voter.history(B, after=last)
        assert polled["state"] == "agent"
        assert words in [m["text"] for m in polled["messages"]]
    finally:
        stream.close()


def _a_slack_retry_at_the_other_gateway_runs_nothing_twice(
    stack: ProductionStack, slack: FakeSlack, tracker_db: str
) -> None:
    event_id = f"Ev{uuid.uuid4().hex[:10].upper()}"
    envelope = {
        "type": "event_callback",
        "team_id": "T0TEST001",
        "event_id": event_id,
        "event_time": int(time.time()),
        "authorizations": [{"is_bot": True, "user_id": "U0BOT0001"}],
        "event": {
            "type": "message",
            "channel_type": "im",
            "user": "U0VOTER01",
            "channel": "D0VOTER01",
            "text": "quand est-ce qu'on vote ?",
            "ts": f"{time.time():.6f}",
        },
    }
    body = json.dumps(envelope).encode()
    url = "{}/webhooks/slack/events"
    first = requests.post(url.format(stack.gateway_urls[A]), data=body, headers=slack_headers(body))
    again = requests.post(
        url.format(stack.gateway_urls[B]), data=body, headers=slack_headers(body, retry=1)
    )
    assert first.status_code == again.status_code == 200
    deadline = time.monotonic() + 60
    while not slack.posts and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)  # time enough for a second answer, were there one
    assert [p["channel"] for p in slack.posts] == ["D0VOTER01"], slack.posts
    assert user_texts(tracker_db, "slack-T0TEST001-U0VOTER01") == ["quand est-ce qu'on vote ?"]


# --------------------------------------------------------------------------- nginx, fast


def test_nginx_accepts_the_generated_configuration_and_is_not_sticky(tmp_path):
    command = proxy_command(
        tmp_path / "proxy",
        tmp_path / "errors.log",
        "127.0.0.1:8080",
        ["127.0.0.1:9001", "127.0.0.1:9002"],
    )
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr  # nginx's own syntax check
    conf = (tmp_path / "proxy" / "nginx.conf").read_text()
    assert "server 127.0.0.1:9001" in conf and "server 127.0.0.1:9002" in conf
    directives = [line.split("#")[0].split() for line in conf.splitlines()]
    names = {words[0] for words in directives if words}
    assert not names & {"ip_hash", "hash", "sticky"}
    assert "proxy_next_upstream error timeout;" in conf  # never non_idempotent: no POST twice


class FakeRasa(LoopbackServer):
    """Rasa's gateway channel on loopback: answers « ok » and records what it received."""

    def __init__(self) -> None:
        self.received: list[str] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler) -> None:
                body = json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))
                self.received.append(body["message"])
                answer = json.dumps({"messages": [{"text": "ok"}], "nlu": None}).encode()
                handler.send_response(200)
                handler.send_header("Content-Type", "application/json")
                handler.send_header("Content-Length", str(len(answer)))
                handler.end_headers()
                handler.wfile.write(answer)

            def do_GET(handler) -> None:
                handler.send_response(200)
                handler.send_header("Content-Length", "0")
                handler.end_headers()

            def log_message(handler, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


def test_behind_nginx_a_conversation_goes_on_when_its_gateway_stops(tmp_path):
    """Two real gateway processes sharing Redis behind nginx: a voter's conversation, its
    cookie and its rate limit carry on through the other gateway when one stops, and no
    message is lost or sent twice to Rasa."""
    redis.Redis.from_url(redis_url(REDIS_DB)).flushdb()
    ports = [free_port() for _ in range(3)]
    env = {
        **os.environ,
        **TEST_LIMITS,
        "GATEWAY_RATE_PER_MINUTE": "1",
        "GATEWAY_RATE_BURST": "10",
        "GATEWAY_REDIS_URL": redis_url(REDIS_DB),
        "BOT_DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "GATEWAY_SESSION_KEY": "the same key for both gateways",
        "BOT_VAULT_KEY": Fernet.generate_key().decode(),
    }
    processes: list[subprocess.Popen] = []
    with FakeRasa().running() as rasa:
        env["RASA_URLS"] = rasa.url
        try:
            for port in ports[1:]:
                argv = [gateway_python(), "-m", "bot.gateway", "--port", str(port)]
                log = (tmp_path / f"gateway-{port}.log").open("wb")
                processes.append(subprocess.Popen(argv, env=env, stdout=log, stderr=log))
            for port, process in zip(ports[1:], processes, strict=True):
                wait_for(f"http://127.0.0.1:{port}/health", process)
            upstreams = [f"127.0.0.1:{port}" for port in ports[1:]]
            command = proxy_command(
                tmp_path / "proxy", tmp_path / "proxy.log", f"127.0.0.1:{ports[0]}", upstreams
            )
            processes.append(subprocess.Popen(command))
            public = f"http://127.0.0.1:{ports[0]}"
            wait_for(f"{public}/health", processes[-1])
            voter = requests.Session()

            def say(message: str) -> int:
                return voter.post(
                    f"{public}/api/chat", json={"message": message}, timeout=30
                ).status_code

            assert [say(f"q{i}") for i in range(6)] == [200] * 6
            served = [
                (tmp_path / f"gateway-{port}.log").read_text().count("POST /api/chat")
                for port in ports[1:]
            ]
            assert all(served), served  # no stickiness: both gateways served this conversation
            processes[0].terminate()  # one gateway stops: nginx sends everything to the other
            processes[0].wait(timeout=20)
            assert [say(f"q{i}") for i in range(6, 10)] == [200] * 4
            assert say("q10") == 429  # the burst of 10 was shared by both gateways
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=20)
    assert rasa.received == [f"q{i}" for i in range(10)]


def _a_reissue_across_both_gateways_leaves_no_personal_value_in_redis(stack: ProductionStack):
    """A voter-ID reissue whose steps alternate between the gateways goes through, and nothing
    the voter typed (phone, NUMEN, birth date, in the forms typed and normalised) is in any
    key or value of the gateways' Redis afterwards."""
    with DEMO_CSV.open(encoding="utf-8") as rows:
        person = next(csv.DictReader(rows))
    day, month, year = person["date_naissance"].split("/")
    voter = Voter(stack)
    steps = [
        "j'ai perdu mon identifiant électeur",
        "06 11 22 33 55",
        f"mon numen c'est {person['numen']}",
        person["date_naissance"],
    ]
    for i, step in enumerate(steps):
        reply = voter.say(i % 2, step)
        assert reply.status_code == 200, reply.text
    offered = [b["payload"] for m in reply.json()["messages"] for b in m.get("buttons", [])]
    assert "/affirm" in offered, reply.text
    done = voter.say(A, "/affirm")
    assert "SMS avec votre nouvel identifiant" in texts(done.json()["messages"])
    personal = [
        "06 11 22 33 55", "0611223355", "+33611223355", "611223355", person["numen"],
        person["date_naissance"], f"{year}-{month}-{day}", f"{day}{month}{year}",
    ]  # fmt: skip
    client = redis.Redis.from_url(redis_url(REDIS_DB))
    stored: list[bytes] = []
    for key in client.scan_iter():
        stored.append(key)
        kind = client.type(key)
        if kind == b"string":
            stored.append(client.get(key) or b"")
        elif kind == b"hash":
            stored.extend(b for pair in client.hgetall(key).items() for b in pair)
        elif kind == b"zset":
            stored.extend(client.zrange(key, 0, -1))
        elif kind == b"set":
            stored.extend(client.smembers(key))
        elif kind == b"list":
            stored.extend(client.lrange(key, 0, -1))
    client.close()
    assert len(stored) > 10  # the gateways' state was there to search
    found = [v for v in personal for item in stored if v.encode() in item]
    assert not found, found
