"""Production mode: the atomic Redis lock store, sticky routing of conversations to replicas,
schema migrations on PostgreSQL, and the whole stack at 2 replicas losing and duplicating no
message under concurrent bursts."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from rasa.core.lock_store import LockError
from sqlalchemy import create_engine, inspect, text

from bot.db import create_schema, make_engine
from bot.gateway.relay import replica_for
from bot.gateway.state import TurnCounter
from bot.knowledge import load_kb
from bot.production.lock_store import AtomicRedisLockStore
from bot.production.migrations import migrate
from bot.production.migrations.metadata import target_metadata
from bot.production.stack import ProductionStack
from tests.conftest import KB, POSTGRES_ADMIN_URL, redis_url, throwaway_postgres


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateRedis:
    """A redis-server of our own on a free port, so it can be stopped and restarted without
    disturbing anyone else using the machine's Redis."""

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise TimeoutError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture()
def redis_server(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


def store(url: str, **settings: float) -> AtomicRedisLockStore:
    return AtomicRedisLockStore(url=url, key_prefix=f"test:{uuid.uuid4().hex[:8]}:", **settings)


# --- the lock store, against a real Redis -------------------------------------------------------


def test_one_turn_at_a_time_per_conversation_across_lock_store_instances(redis_server):
    """Two lock stores (two replicas) and 40 concurrent turns on one conversation: never two
    inside at once, none lost; another conversation is not held up meanwhile."""
    replicas = [store(redis_server.url), store(redis_server.url)]
    replicas[1].key_prefix = replicas[0].key_prefix  # same keys, as two replicas would share
    inside, most_inside, done = 0, 0, []

    async def turn(i: int) -> None:
        nonlocal inside, most_inside
        async with replicas[i % 2].lock("voter-1"):
            inside += 1
            most_inside = max(most_inside, inside)
            await asyncio.sleep(0.005)
            inside -= 1
            done.append(i)

    async def scenario() -> float:
        started = time.monotonic()
        other = asyncio.create_task(_timed_lock(replicas[1], "voter-2"))
        await asyncio.gather(*(turn(i) for i in range(40)))
        return await other - started

    other_waited = asyncio.run(scenario())
    assert most_inside == 1
    assert sorted(done) == list(range(40))
    assert other_waited < 0.5


async def _timed_lock(lock_store: AtomicRedisLockStore, conversation: str) -> float:
    async with lock_store.lock(conversation):
        return time.monotonic()


def test_a_waiting_turn_gives_up_after_the_acquire_timeout(redis_server):
    lock_store = store(redis_server.url, acquire_timeout=0.5, lock_lifetime=10)

    async def scenario() -> float:
        async with lock_store.lock("voter"):
            started = time.monotonic()
            with pytest.raises(LockError):
                async with lock_store.lock("voter"):
                    pass
            return time.monotonic() - started

    waited = asyncio.run(scenario())
    assert 0.5 <= waited < 1.5


def test_a_lock_left_by_a_dead_process_expires(redis_server):
    """A replica killed while holding a lock: its key expires after `lock_lifetime` and the next
    turn goes through."""
    lock_store = store(redis_server.url, lock_lifetime=1, acquire_timeout=5)
    script = (
        "import asyncio, os, sys\n"
        "from bot.production.lock_store import AtomicRedisLockStore\n"
        "async def main():\n"
        f"    s = AtomicRedisLockStore(url={redis_server.url!r}, "
        f"key_prefix={lock_store.key_prefix!r}, lock_lifetime=1)\n"
        "    async with s.lock('voter'):\n"
        "        print('held', flush=True)\n"
        "        os._exit(9)\n"
        "asyncio.run(main())\n"
    )
    dead = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert dead.returncode == 9 and "held" in dead.stdout

    async def scenario() -> float:
        started = time.monotonic()
        async with lock_store.lock("voter"):
            return time.monotonic() - started

    assert asyncio.run(scenario()) < 1.5


def test_a_slow_turn_keeps_its_lock_beyond_the_lifetime(redis_server):
    """The lock is renewed while held: a turn slower than `lock_lifetime` is not joined by
    another one."""
    lock_store = store(redis_server.url, lock_lifetime=0.6, acquire_timeout=5)
    order = []

    async def slow() -> None:
        async with lock_store.lock("voter"):
            order.append("slow in")
            await asyncio.sleep(1.5)
            order.append("slow out")

    async def quick() -> None:
        await asyncio.sleep(0.1)
        async with lock_store.lock("voter"):
            order.append("quick")

    async def scenario() -> None:
        await asyncio.gather(slow(), quick())

    asyncio.run(scenario())
    assert order == ["slow in", "slow out", "quick"]


def test_turns_wait_through_a_redis_restart_and_then_go_through(redis_server):
    lock_store = store(redis_server.url, acquire_timeout=8)

    async def scenario() -> None:
        async with lock_store.lock("voter"):
            pass
        redis_server.stop()
        restarted = asyncio.get_running_loop().run_in_executor(None, _restart_later, redis_server)
        async with lock_store.lock("voter"):  # Redis down: waits, then takes the lock
            pass
        await restarted

    asyncio.run(scenario())


def _restart_later(server: PrivateRedis) -> None:
    time.sleep(1)
    server.start()


def test_a_redis_outage_longer_than_the_timeout_is_a_lock_error_not_a_hang(redis_server):
    lock_store = store(redis_server.url, acquire_timeout=1)
    redis_server.stop()

    async def scenario() -> None:
        with pytest.raises(LockError):
            async with lock_store.lock("voter"):
                pass

    started = time.monotonic()
    asyncio.run(scenario())
    assert time.monotonic() - started < 4


def test_the_lock_store_loads_from_endpoints_yml(tmp_path):
    from rasa.core.lock_store import LockStore
    from rasa.utils.endpoints import read_endpoint_config

    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text(
        "lock_store:\n"
        "  type: bot.production.lock_store.AtomicRedisLockStore\n"
        "  url: redis://127.0.0.1:6399/3\n"
        "  key_prefix: 'x:'\n"
        "  lock_lifetime: 7\n"
        "  acquire_timeout: 3\n"
    )
    lock_store = LockStore.create(read_endpoint_config(str(endpoints), "lock_store"))
    assert isinstance(lock_store, AtomicRedisLockStore)
    assert (lock_store.url, lock_store.key_prefix) == ("redis://127.0.0.1:6399/3", "x:")
    assert (lock_store.lock_lifetime, lock_store.acquire_timeout) == (7, 3)


# --- routing and the turn limit ----------------------------------------------------------------

REPLICAS = [f"http://127.0.0.1:{5005 + i}" for i in range(4)]


def test_a_conversation_always_goes_to_the_same_replica_and_they_share_the_load():
    senders = [f"web-{uuid.uuid4().hex}" for _ in range(4000)]
    first = [replica_for(s, REPLICAS) for s in senders]
    assert first == [replica_for(s, list(reversed(REPLICAS))) for s in senders]  # order-free
    counts = Counter(first)
    assert set(counts) == set(REPLICAS)
    assert min(counts.values()) > 0.8 * len(senders) / len(REPLICAS)


def test_adding_a_replica_moves_only_the_conversations_it_takes():
    senders = [f"telegram-{i}" for i in range(4000)]
    before = {s: replica_for(s, REPLICAS) for s in senders}
    grown = [*REPLICAS, "http://127.0.0.1:5009"]
    moved = [s for s in senders if replica_for(s, grown) != before[s]]
    assert all(replica_for(s, grown) == grown[-1] for s in moved)
    assert 0.1 < len(moved) / len(senders) < 0.3  # about 1/5


def test_a_conversation_reaching_the_turn_limit_must_start_over():
    counter = TurnCounter(limit=3, idle_seconds=3600)
    assert [counter.add("a", now=t) for t in range(4)] == [True, True, True, False]
    assert counter.add("b", now=4)  # the others are not affected
    counter.reset("a")  # "Recommencer"
    assert counter.add("a", now=5)
    assert counter.add("a", now=5 + 3601)  # after the session's expiry, counting starts afresh


def _through_a_gateway_with_fake_replicas(monkeypatch, scenario, replicas: int = 2) -> list:
    """The real gateway app in front of `replicas` fake Rasa servers that record, per replica,
    the (sender, message) pairs they receive; `scenario(client_factory)` drives browsers."""
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer
    from cryptography.fernet import Fernet

    from bot.gateway.app import create_app
    from bot.local_stack import TEST_LIMITS
    from bot.personal_data.vault import Vault

    for name, value in TEST_LIMITS.items():  # scripted browsers, all on 127.0.0.1
        monkeypatch.setenv(name, value)
    received: list[list[tuple[str, str]]] = [[] for _ in range(replicas)]

    def fake_rasa(log: list) -> web.Application:
        async def webhook(request: web.Request) -> web.Response:
            body = await request.json()
            log.append((body["sender"], body["message"]))
            # A new session says nothing, as Rasa's `action_session_start` does.
            said = [] if body["message"] == "/session_start" else [{"text": "ok"}]
            return web.json_response({"messages": said, "nlu": None})

        app = web.Application()
        app.router.add_post("/webhooks/gateway/webhook", webhook)
        return app

    async def main(folder: str) -> None:
        servers = [TestServer(fake_rasa(log)) for log in received]
        for server in servers:
            await server.start_server()
        monkeypatch.setenv("RASA_URLS", ",".join(str(s.make_url("")) for s in servers))
        vault = Vault(create_schema(f"sqlite:///{folder}/vault.db"), Fernet.generate_key())
        gateway = TestServer(create_app(vault=vault))
        await gateway.start_server()
        clients: list[TestClient] = []

        async def browser() -> TestClient:
            client = TestClient(gateway)  # its own cookie jar: its own conversation
            await client.start_server()
            clients.append(client)
            return client

        try:
            await scenario(browser)
        finally:
            for client in clients:
                await client.close()
            for server in servers:
                await server.close()

    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(main(folder))
    return received


def test_the_gateway_sends_each_browser_always_to_the_same_replica(monkeypatch):
    async def scenario(browser) -> None:
        for _ in range(30):
            client = await browser()
            for n in range(3):
                reply = await client.post("/api/chat", json={"message": f"question {n}"})
                assert reply.status == 200

    received = _through_a_gateway_with_fake_replicas(monkeypatch, scenario)
    senders = [{sender for sender, _ in log} for log in received]
    assert all(senders), "every replica gets conversations"
    assert not senders[0] & senders[1], "no conversation is split between replicas"
    assert sum(len(log) for log in received) == 90


def test_a_too_long_conversation_is_offered_to_start_over(monkeypatch):
    from bot.gateway.relay import START_OVER, STARTED_OVER, TURN_LIMIT

    monkeypatch.setenv("GATEWAY_MAX_TURNS_PER_SESSION", "3")

    async def scenario(browser) -> None:
        client, other = await browser(), await browser()
        for n in range(3):
            assert (await client.post("/api/chat", json={"message": f"q{n}"})).status == 200
        limited = await (await client.post("/api/chat", json={"message": "q3"})).json()
        assert limited["messages"][0]["text"] == TURN_LIMIT
        assert limited["messages"][0]["buttons"] == [
            {"title": "Recommencer", "payload": START_OVER}
        ]
        other_reply = await other.post("/api/chat", json={"message": "bonjour"})
        assert (await other_reply.json())["messages"] == [{"text": "ok"}]  # others unaffected
        restarted = await (await client.post("/api/chat", json={"message": START_OVER})).json()
        assert restarted["messages"] == [{"text": STARTED_OVER}]
        again = await (await client.post("/api/chat", json={"message": "q4"})).json()
        assert again["messages"] == [{"text": "ok"}]

    received = _through_a_gateway_with_fake_replicas(monkeypatch, scenario, replicas=1)
    messages = [m for _, m in received[0]]
    assert "q3" not in messages  # refused at the gateway, never reached Rasa
    assert messages.count(START_OVER) == 1 and messages[-1] == "q4"


# --- migrations --------------------------------------------------------------------------------


@pytest.fixture()
def postgres_database() -> Iterator[str]:
    with throwaway_postgres("prod_test") as url:
        yield url


def _schema_differences(url: str) -> list:
    engine = make_engine(url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), target_metadata)
    engine.dispose()
    return diff


def test_the_migrations_create_exactly_the_models_schema_on_postgresql(postgres_database):
    migrate(postgres_database)
    assert _schema_differences(postgres_database) == []
    migrate(postgres_database)  # a second run changes nothing
    engine = make_engine(postgres_database)
    assert load_kb(engine, KB) is True  # the knowledge base then loads into the migrated tables
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()


def test_a_database_made_before_migrations_is_adopted_not_recreated(postgres_database):
    engine = create_schema(postgres_database)  # what `python -m bot.knowledge load` did
    load_kb(engine, KB)  # before migrations
    migrate(postgres_database)
    with engine.connect() as connection:
        assert "alembic_version" in inspect(connection).get_table_names()
        assert connection.execute(text("SELECT count(*) FROM academie")).scalar() > 0
    engine.dispose()


# --- the whole stack: 2 replicas, PostgreSQL, Redis ---------------------------------------------


@pytest.mark.live
def test_no_message_is_lost_or_duplicated_across_two_replicas(tmp_path, postgres_database):
    from bot.local_stack import TEST_LIMITS
    from bot.training import ensure_model

    base = postgres_database.rsplit("/", 1)[0]
    suffix = postgres_database.rsplit("_", 1)[1]
    tracker_url, portal_url = f"{base}/prod_tracker_{suffix}", f"{base}/prod_portal_{suffix}"
    prefix = f"prodtest{suffix}"
    stack = ProductionStack(
        tmp_path,
        ensure_model(),
        replicas=2,
        env={
            "BOT_DATABASE_URL": postgres_database,
            "TRACKER_DATABASE_URL": tracker_url,
            "PORTAL_DATABASE_URL": portal_url,
            "REDIS_URL": redis_url(5),
            **TEST_LIMITS,
            # 20 turns of one conversation queue up at once here: the 20th waits for 19 others.
            "LOCK_ACQUIRE_TIMEOUT_SECONDS": "60",
        },
    )
    try:
        stack.start()
        sent, answers = _bursts(stack, prefix)
        tracker = create_engine(tracker_url, future=True)
        with tracker.connect() as connection:
            rows = connection.execute(
                text("SELECT sender_id, type_name, action_name, data FROM events ORDER BY id")
            ).all()
        tracker.dispose()
        _assert_each_message_once_with_one_answer(rows, sent, answers)
        print(f"\nno-loss test: {len(sent)} messages sent, {len(answers)} answered")
        # « Recommencer » starts a new Rasa session for that conversation.
        from bot.gateway.app import sender_id
        from bot.gateway.relay import STARTED_OVER

        assert stack.chat("recommencer", voter="restarting") == [{"text": STARTED_OVER}]
        token = stack._voters["restarting"].cookies["sid"]
        with tracker.connect() as connection:
            kinds = (
                connection.execute(
                    text("SELECT type_name FROM events WHERE sender_id = :s ORDER BY id"),
                    {"s": sender_id(token)},
                )
                .scalars()
                .all()
            )
        tracker.dispose()
        assert kinds.count("session_started") == 2, kinds
        print(f"peak memory: {[round(stack.peak_memory_mb(f'rasa-{i}')) for i in range(2)]} MB")
        for name in ("rasa-0", "rasa-1"):  # both replicas served
            assert "Exception" not in (stack.logs / f"{name}.log").read_text(errors="replace")
        # Each process logged timestamped lines naming it on its standard output (captured
        # here into logs/<name>.log; `python -m bot.production` leaves them on its own).
        from tests.test_logs import assert_text_log

        for name in ("gateway", "portal", "actions-0", "actions-1", "rasa-0", "rasa-1"):
            assert_text_log(stack.logs / f"{name}.log", name, only_records=False)
    finally:
        stack.stop()
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", future=True)
        with admin.connect() as conn:
            for url in (tracker_url, portal_url):
                conn.execute(
                    text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
                )
        admin.dispose()


QUESTIONS = ["quand est-ce qu'on vote ?", "webmail Créteil", "je suis AESH, je vote pour quoi ?",
             "quelles sont les règles du mot de passe ?", "bonjour"]  # fmt: skip


def _bursts(stack: ProductionStack, prefix: str) -> tuple[dict[str, str], dict[str, list]]:
    """Two kinds of pressure at once, each message with a unique marker:
    - straight to the replicas, bypassing the sticky routing (what the locks must survive):
      6 conversations x 20 messages sent together, alternately to replica 0 and replica 1;
    - through the gateway: 60 voters x 4 messages, all voters at once, each voter's messages
      sent together.
    Returns {marker: sender} and {marker: messages answered}."""
    token = stack.env["GATEWAY_RASA_TOKEN"]
    jobs = []
    for c in range(6):
        for m in range(20):
            marker = f"r{c}m{m}"
            jobs.append(("direct", f"{prefix}-direct-{c}", marker, m % 2))
    for v in range(60):
        for m in range(4):
            jobs.append(("gateway", f"voter-{v}", f"g{v}m{m}", 0))
    sessions: dict[str, requests.Session] = {}

    def send(job) -> tuple[str, str, list]:
        kind, who, marker, replica = job
        text_ = f"{QUESTIONS[hash(marker) % len(QUESTIONS)]} {marker}"
        if kind == "direct":
            reply = requests.post(
                f"{stack.rasa_urls[replica]}/webhooks/gateway/webhook",
                json={"sender": who, "message": text_},
                headers={"Authorization": f"Bearer {token}"},
                timeout=120,
            )
            return marker, who, reply.json()["messages"] if reply.ok else reply.status_code
        session = sessions.setdefault(who, requests.Session())
        reply = session.post(f"{stack.gateway_url}/api/chat", json={"message": text_}, timeout=120)
        return marker, who, reply.json()["messages"] if reply.ok else reply.status_code

    # Each gateway voter gets its cookie (and sender id) before the bursts.
    for v in range(60):
        sessions[f"voter-{v}"] = requests.Session()
        sessions[f"voter-{v}"].get(f"{stack.gateway_url}/api/history", timeout=30)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=64) as pool:
        results = list(pool.map(send, jobs))
    elapsed = time.monotonic() - started
    sent = {marker: who for marker, who, _ in results}
    answers = {marker: messages for marker, _, messages in results}
    failed = Counter(a for a in answers.values() if not isinstance(a, list))
    print(f"\n{len(jobs)} messages in {elapsed:.1f} s, HTTP errors: {dict(failed)}")
    assert len(sent) == len(jobs) == 360
    assert not failed
    return sent, answers


def _assert_each_message_once_with_one_answer(rows, sent, answers) -> None:
    """In the tracker store, each conversation is user, its actions and bot messages, one
    `action_listen`, then the next user message: turns never interleave; every marker appears in
    exactly one user event, followed by as many bot messages as its HTTP answer carried."""
    import json

    by_sender: dict[str, list] = {}
    for sender, type_name, action_name, data in rows:
        by_sender.setdefault(sender, []).append((type_name, action_name, json.loads(data)))
    seen: Counter = Counter()
    turns: list[tuple[str, str, list[str], int]] = []  # sender, marker, bot texts, listens
    for sender, events in by_sender.items():
        for type_name, action_name, data in events:
            if type_name == "user":
                marker = data.get("text", "").rsplit(" ", 1)[-1]
                seen[marker] += 1
                turns.append((sender, marker, [], 0))
            elif turns and turns[-1][0] == sender and type_name == "bot":
                turns[-1][2].append(data.get("text") or "")
            elif turns and turns[-1][0] == sender and action_name == "action_listen":
                turns[-1] = (*turns[-1][:3], turns[-1][3] + 1)
    assert sum(seen.values()) == len(sent)  # no other user message either
    for sender, marker, bot_texts, listens in turns:
        assert listens == 1, (sender, marker, listens)
        # Rasa's collecting channel splits a text at blank lines: compare the whole texts.
        answered = "\n\n".join(m.get("text", "") for m in answers[marker] if m.get("text"))
        assert "\n\n".join(t.strip() for t in bot_texts if t) == answered, marker
    gateway_markers = {m for m in sent if m.startswith("g")}
    direct_markers = {m for m in sent if m.startswith("r")}
    assert {m for m in seen if m in direct_markers} == direct_markers
    assert all(seen[m] == 1 for m in direct_markers)
    # Gateway voters' sender ids are derived from their cookies: count their markers too.
    assert all(seen[m] == 1 for m in gateway_markers), Counter(seen[m] for m in gateway_markers)
    assert all(answers[m] for m in sent)
