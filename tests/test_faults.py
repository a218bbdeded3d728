"""Faults, each a test: a part of the assistant stops in the middle of a conversation.

Each test starts its own assistant (`LocalStack`: portal, actions, Rasa, gateway on loopback),
so a process it kills cannot disturb other tests, and its own PostgreSQL or Redis when it needs
one (a private instance in a temporary folder, on a free port): restarting them disturbs nobody.
The user is always a browser talking to the gateway, the clock pinned during the vote.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from bot.gateway.relay import UNAVAILABLE
from bot.local_stack import LocalStack, free_port
from bot.training import ensure_model
from tests.conftest import texts
from tests.test_chores_live import sms_to, voter

pytestmark = pytest.mark.live

DURING_THE_VOTE = {"BOT_NOW": "2018-11-30T12:00"}
SERVICE_ERROR = "un incident technique m'empêche de répondre"  # domain.yml utter_service_error
PORTAL_DOWN = "Le service d'envoi ne répond pas"  # bot/answers/chore_wording.py PORTAL_DOWN
# What the user may read while a database is down: Rasa's tracker store fails (the gateway's
# "unavailable"), an action fails (the service-error sentence), or the gateway's vault fails
# (bot/gateway/security.py's generic French error).
FRENCH_ERRORS = (UNAVAILABLE, SERVICE_ERROR, "Une erreur inattendue s'est produite de notre côté")
PG_BIN = Path("/usr/lib/postgresql/15/bin")


@contextlib.contextmanager
def assistant(tmp_path: Path, **options) -> Iterator[LocalStack]:
    env = {**DURING_THE_VOTE, **options.pop("env", {})}
    stack = LocalStack(tmp_path / "stack", ensure_model(), env, **options)
    stack.workdir.mkdir(parents=True, exist_ok=True)
    try:
        yield stack.start()
    finally:
        stack.stop()


def chat(stack: LocalStack, text: str, who: str) -> tuple[int, str, float]:
    """One message through the gateway: HTTP status, everything said (or the error), seconds."""
    session = stack._voters.setdefault(who, requests.Session())
    began = time.monotonic()
    reply = session.post(f"{stack.gateway_url}/api/chat", json={"message": text}, timeout=60)
    took = time.monotonic() - began
    body = reply.json()  # always JSON: a traceback or an HTML error page would fail here
    said = texts(body["messages"]) if reply.ok else body["error"]
    return reply.status_code, said, took


def start_reissue(stack: LocalStack, who: str, phone: str) -> None:
    """Up to the NUMEN question of the voter-ID reissue form."""
    assert "portable" in chat(stack, "j'ai perdu mon identifiant électeur", who)[1]
    assert "Quel est votre NUMEN" in chat(stack, phone, who)[1]


def finish_reissue(stack: LocalStack, who: str, numen: str, birth: str) -> str:
    """From the NUMEN question to the portal's answer (confirming the summary)."""
    assert "date de naissance" in chat(stack, numen, who)[1]
    assert "J'envoie la demande" in chat(stack, birth, who)[1]
    return chat(stack, "/affirm", who)[1]


# --- 1. The action server stops in the middle of a form ---------------------------------------


def test_action_server_down_gets_a_polite_answer_and_the_form_resumes_once_it_is_back(tmp_path):
    person = voter(0)
    with assistant(tmp_path, tracker_db=True) as stack:
        start_reissue(stack, "v", "06 11 22 33 44")
        stack.stop_process("actions", kill=True)

        # Every message gets the service-error sentence, quickly, never silence or a traceback.
        for text in (person["numen"], "c'est quoi le NUMEN ?", "bonjour"):
            status, said, took = chat(stack, text, "v")
            assert status == 200 and SERVICE_ERROR in said and took < 5
            assert "Traceback" not in said and "Exception" not in said
        flagged = requests.post(
            f"{stack.url}/webhooks/gateway/webhook",
            json={"sender": "probe", "message": "mot de passe oublié"},
            headers={"Authorization": f"Bearer {stack.env['GATEWAY_RASA_TOKEN']}"},
            timeout=30,
        ).json()
        assert flagged["service_error"] is True and SERVICE_ERROR in texts(flagged["messages"])

        stack.start_process("actions")
        # The same conversation goes on: the form still has the phone, it asks the date next.
        done = finish_reissue(stack, "v", person["numen"], person["date_naissance"])
        assert "SMS avec votre nouvel identifiant" in done and "+33 6 •• •• •• 44" in done
        assert len(sms_to(stack.portal_outbox(), "44")) == 1
        # When everything works, no service-error flag.
        working = requests.post(
            f"{stack.url}/webhooks/gateway/webhook",
            json={"sender": "probe2", "message": "bonjour"},
            headers={"Authorization": f"Bearer {stack.env['GATEWAY_RASA_TOKEN']}"},
            timeout=30,
        ).json()
        assert "service_error" not in working and SERVICE_ERROR not in texts(working["messages"])


# --- 2. The portal is down, then slow ---------------------------------------------------------


class SlowProxy:
    """A TCP proxy on loopback that forwards requests at once and holds answers `delay` s: a
    portal that does its work but answers late."""

    def __init__(self, upstream_port: int, delay: float) -> None:
        self.port, self.delay, self._upstream = free_port(), delay, upstream_port
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SlowProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *_) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", self.port)
        )
        self._ready.set()
        self._loop.run_forever()
        server.close()
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    async def _handle(self, client_in, client_out) -> None:
        try:
            upstream_in, upstream_out = await asyncio.open_connection("127.0.0.1", self._upstream)
        except OSError:
            client_out.close()
            return

        async def pipe(source, sink, delay: float) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while chunk := await source.read(65536):
                    await asyncio.sleep(delay)
                    sink.write(chunk)
                    await sink.drain()
            sink.close()

        await asyncio.gather(
            pipe(client_in, upstream_out, 0), pipe(upstream_in, client_out, self.delay)
        )


def test_portal_down_or_slow_gets_a_clear_message_and_a_retry_sends_no_second_sms(tmp_path):
    down, slow = voter(1), voter(2)
    options = {"env": {"PORTAL_TIMEOUT_SECONDS": "1.5"}}
    with assistant(tmp_path, **options) as stack, SlowProxy(stack.portal_port, 0) as proxy:
        # The action server reaches the portal through the proxy, which can slow it down.
        stack.restart("actions", env={"PORTAL_URL": f"http://127.0.0.1:{proxy.port}"})

        # Down: the voter is told at once, and asking again once it is back sends one SMS.
        start_reissue(stack, "down", "06 22 33 44 55")
        stack.stop_process("portal", kill=True)
        began = time.monotonic()
        said = finish_reissue(stack, "down", down["numen"], down["date_naissance"])
        assert PORTAL_DOWN in said and "Réessayez" in said
        assert time.monotonic() - began < 8
        stack.start_process("portal")
        assert sms_to(stack.portal_outbox(), "55") == []
        start_reissue(stack, "down", "06 22 33 44 55")
        said = finish_reissue(stack, "down", down["numen"], down["date_naissance"])
        assert "SMS avec votre nouvel identifiant" in said
        assert len(sms_to(stack.portal_outbox(), "55")) == 1

        # Slow: the portal does its work but answers after our timeout (1.5 s here).
        proxy.delay = 4
        start_reissue(stack, "slow", "06 33 44 55 66")
        began = time.monotonic()
        said = finish_reissue(stack, "slow", slow["numen"], slow["date_naissance"])
        assert PORTAL_DOWN in said
        assert time.monotonic() - began < 8  # our timeout, not the portal's delay
        time.sleep(proxy.delay)
        assert len(sms_to(stack.portal_outbox(), "66")) == 1  # the SMS did leave
        # Told it did not work, the voter asks again with the same values: the portal replays
        # its answer (same idempotency key), no second SMS.
        proxy.delay = 0
        start_reissue(stack, "slow", "06 33 44 55 66")
        said = finish_reissue(stack, "slow", slow["numen"], slow["date_naissance"])
        assert "SMS avec votre nouvel identifiant" in said
        assert len(sms_to(stack.portal_outbox(), "66")) == 1


# --- 3. Rasa restarts in the middle of a form -------------------------------------------------


def test_rasa_restart_answers_unavailable_meanwhile_and_resumes_from_the_tracker_store(tmp_path):
    person = voter(3)
    with assistant(tmp_path, tracker_db=True) as stack:
        start_reissue(stack, "v", "06 44 55 66 77")
        stack.stop_process("rasa", kill=True)
        status, said, took = chat(stack, person["numen"], "v")
        assert (status, said) == (503, UNAVAILABLE) and took < 5

        stack.start_process("rasa")
        # The new Rasa process reads the conversation back: the form asks the next question.
        done = finish_reissue(stack, "v", person["numen"], person["date_naissance"])
        assert "SMS avec votre nouvel identifiant" in done and "+33 6 •• •• •• 77" in done
        assert len(sms_to(stack.portal_outbox(), "77")) == 1


# --- 4. PostgreSQL restarts (our database and Rasa's tracker store) ---------------------------


class PrivatePostgres:
    """A PostgreSQL cluster of our own in a temporary folder, on a free loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="faults-pg-"))
        self.data = self.dir / "data"
        # PostgreSQL refuses to run as root: then it runs as the `postgres` system user.
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            shutil.chown(self.dir, "postgres")

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str) -> None:
        subprocess.run([*self._as, *argv], check=True, capture_output=True, timeout=60)

    def init(self) -> None:
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            str(PG_BIN / "pg_ctl"), "start", "-w", "-D", str(self.data), "-o", options,
            "-l", str(self.dir / "postgres.log"),
        )  # fmt: skip

    def stop(self) -> None:
        self._run(str(PG_BIN / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.data))

    def create_database(self, name: str) -> None:
        self._run(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), name)


@pytest.fixture()
def postgres() -> Iterator[PrivatePostgres]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL 15 is not installed ({PG_BIN})")
    server = PrivatePostgres()
    server.init()
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(subprocess.SubprocessError):
            server.stop()
        shutil.rmtree(server.dir, ignore_errors=True)


def test_postgresql_restart_gets_french_errors_meanwhile_then_works_without_restarts(
    tmp_path, postgres
):
    person = voter(4)
    postgres.create_database("bot")
    postgres.create_database("rasa")
    options = {
        "env": {"BOT_DATABASE_URL": postgres.url("bot")},
        "tracker_store_url": postgres.url("rasa"),
    }
    with assistant(tmp_path, **options) as stack:
        start_reissue(stack, "v", "06 55 66 77 88")
        postgres.stop()
        for text in ("bonjour", "quand est-ce qu'on vote ?", person["numen"], "12/03/1980"):
            status, said, took = chat(stack, text, "v")
            assert status in (200, 500, 503) and any(e in said for e in FRENCH_ERRORS), text
            assert took < 5, text

        postgres.start()
        # No process restarted: their connection pools reconnect (pool_pre_ping).
        assert "décembre" in chat(stack, "quand est-ce qu'on vote ?", "other")[1]
        done = finish_reissue(stack, "v", person["numen"], person["date_naissance"])
        assert "SMS avec votre nouvel identifiant" in done and "+33 6 •• •• •• 88" in done
        assert len(sms_to(stack.portal_outbox(), "88")) == 1


# --- 5. Redis restarts (Rasa's conversation locks) --------------------------------------------


class PrivateRedis:
    """A Redis server of our own, without persistence, on a free loopback port."""

    def __init__(self, folder: Path) -> None:
        self.port, self.dir = free_port(), folder
        self.dir.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.dir),
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.1)
        raise TimeoutError("redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture()
def redis_server(tmp_path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = PrivateRedis(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_redis_restart_gets_a_french_error_meanwhile_then_works_without_restarts(
    tmp_path, redis_server
):
    person = voter(5)
    with assistant(tmp_path, tracker_db=True, lock_store_url=redis_server.url) as stack:
        start_reissue(stack, "v", "06 66 77 88 99")
        redis_server.stop()
        status, said, took = chat(stack, person["numen"], "v")
        assert (status, said) == (503, UNAVAILABLE)
        assert took < 14  # the lock store's acquire timeout (10 s), within the gateway's 15 s

        redis_server.start()
        done = finish_reissue(stack, "v", person["numen"], person["date_naissance"])
        assert "SMS avec votre nouvel identifiant" in done and "+33 6 •• •• •• 99" in done
        assert len(sms_to(stack.portal_outbox(), "99")) == 1
