"""Probes and metrics of the gateway and the action server, over real HTTP on loopback.

`/health/ready` is tried against parts that really answer, are really stopped, listen on a
closed port, or accept the connection and never answer; `/metrics` is read after real
conversations with the trained model (the `live_bot` stack) and a real gateway process.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator

import pytest
import requests
from aiohttp.test_utils import TestClient, TestServer
from cryptography.fernet import Fernet
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine

from bot.config import REPO_ROOT
from bot.db import create_schema
from bot.gateway.app import create_app
from bot.gateway.health import READY_TIMEOUT_SECONDS
from bot.gateway.keys import DESK
from bot.local_stack import LocalStack, free_port, gateway_python, wait_for
from bot.metrics import FORBIDDEN, may_read_metrics
from bot.personal_data.vault import Vault
from bot.support.accounts import Accounts
from bot.support.desk import SupportDesk
from tests.conftest import redis_url, texts

Scenario = Callable[[TestClient], Awaitable[None]]
REDIS_DATABASE = 13  # this module's own Redis database number


def closed_port() -> int:
    """A loopback port nobody listens on (connections are refused at once)."""
    return free_port()


def gateway(scenario: Scenario, rasa_url: str, vault: Vault | None = None, **env: str) -> None:
    """Run `scenario` against an in-process gateway on a real loopback port, with `env` set."""

    async def main() -> None:
        with tempfile.TemporaryDirectory() as folder:
            own_vault = vault or Vault(
                create_schema(f"sqlite:///{folder}/bot.db"), Fernet.generate_key()
            )
            async with TestClient(TestServer(create_app(rasa_url, vault=own_vault))) as client:
                await scenario(client)

    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        asyncio.run(main())
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def sample(page: str, name: str, **labels: str) -> float:
    """The value of one series of a Prometheus text page (0 when absent)."""
    for family in text_string_to_metric_families(page):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return found.value
    return 0.0


def test_live_answers_and_ready_names_every_part_that_is_down_within_the_timeout():
    unreachable_db = Vault(
        create_engine(f"postgresql://postgres@127.0.0.1:{closed_port()}/assistant"),
        Fernet.generate_key(),
    )

    async def scenario(client: TestClient) -> None:
        assert (await client.get("/health/live")).status == 200
        started = time.monotonic()
        reply = await client.get("/health/ready")
        body = await reply.json()
        assert reply.status == 503
        assert body["ready"] is False
        assert body["failing"] == ["rasa-0", "actions-0", "database", "redis"]
        assert body["parts"]["rasa-0"] == "injoignable"
        assert time.monotonic() - started < READY_TIMEOUT_SECONDS + 1
        assert "127.0.0.1" not in await reply.text()  # parts are named, never addressed
        # The widget's /health is unchanged: the gateway itself is reachable.
        assert (await client.get("/health")).status == 200

    gateway(
        scenario,
        f"http://127.0.0.1:{closed_port()}",
        vault=unreachable_db,
        ACTION_SERVER_URLS=f"http://127.0.0.1:{closed_port()}",
        REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0",
    )


def test_a_replica_that_accepts_but_never_answers_costs_the_probe_two_seconds_not_fifteen():
    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections, never answers
    port = silent.getsockname()[1]

    async def scenario(client: TestClient) -> None:
        started = time.monotonic()
        reply = await client.get("/health/ready")
        elapsed = time.monotonic() - started
        body = await reply.json()
        assert reply.status == 503
        assert "rasa-0" in body["failing"]
        assert body["parts"]["rasa-0"] == f"pas de réponse en {READY_TIMEOUT_SECONDS:g} s"
        assert elapsed < READY_TIMEOUT_SECONDS + 1.5

    try:
        gateway(
            scenario,
            f"http://127.0.0.1:{port}",
            ACTION_SERVER_URLS=f"http://127.0.0.1:{closed_port()}",
        )
    finally:
        silent.close()


def test_metrics_answer_this_host_and_the_bearer_of_the_token_only():
    async def scenario(client: TestClient) -> None:
        local = await client.get("/metrics")
        assert local.status == 200
        assert local.content_type == "text/plain"
        page = await local.text()
        assert "assistant_turns_total" in page
        # Through the reverse proxy (loopback, trusted), from elsewhere: the proxy opens nothing.
        outside = {"X-Forwarded-For": "203.0.113.7"}
        refused = await client.get("/metrics", headers=outside)
        assert refused.status == 403
        assert (await refused.json())["error"] == FORBIDDEN
        for wrong in ("Bearer mauvais-jeton", "le-jeton-des-metriques", "Bearer "):
            headers = {**outside, "Authorization": wrong}
            assert (await client.get("/metrics", headers=headers)).status == 403
        headers = {**outside, "Authorization": "Bearer le-jeton-des-metriques"}
        assert (await client.get("/metrics", headers=headers)).status == 200

    gateway(scenario, f"http://127.0.0.1:{closed_port()}", METRICS_TOKEN="le-jeton-des-metriques")


def test_handoffs_waiting_taken_and_vault_entries_are_reported(tmp_path):
    engine = create_schema(f"sqlite:///{tmp_path / 'bot.db'}")
    vault = Vault(engine, Fernet.generate_key())
    agent = Accounts(engine).create_agent("camille", "Camille Durand", "un-mot-de-passe-long-1A")

    async def scenario(client: TestClient) -> None:
        before = await (await client.get("/metrics")).text()
        desk: SupportDesk = client.server.app[DESK]
        await desk.request_handoff("web-" + "a" * 32, "demande")
        second = "web-" + "b" * 32
        await desk.request_handoff(second, "demande")
        vault.put(second, {"numen": "01E9501234ABC", "phone": "+33612345678"})
        handoff = await asyncio.to_thread(desk.store.open_handoff_of, second)
        await desk.take(handoff.id, agent.id)
        await asyncio.sleep(0.05)  # the metrics' listener reads the desk's events
        after = await (await client.get("/metrics")).text()
        assert sample(after, "assistant_handoffs_waiting") == 1
        taken = "assistant_handoffs_taken_total"
        assert sample(after, taken) - sample(before, taken) == 1
        requested = "assistant_handoffs_requested_total"
        assert sample(after, requested) - sample(before, requested) == 2
        assert sample(after, "assistant_vault_entries") == 2

    gateway(scenario, f"http://127.0.0.1:{closed_port()}", vault=vault)


def test_the_dashboard_reads_only_metrics_that_the_processes_expose():
    import bot.portal.client  # noqa: F401  (the action server's counters, in this process)

    dashboard = json.loads((REPO_ROOT / "docs" / "grafana-dashboard.json").read_text())
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(assistant_\w+)", target["expr"])
    }
    assert len(used) >= 9

    async def scenario(client: TestClient) -> None:
        page = await (await client.get("/metrics")).text()
        families = {family.name for family in text_string_to_metric_families(page)}
        # A series is its family's name plus the type's suffix (counter, histogram).
        unknown = {n for n in used if re.sub(r"_(total|bucket|count|sum)$", "", n) not in families}
        assert not unknown, unknown

    gateway(scenario, f"http://127.0.0.1:{closed_port()}")


# ---------------------------------------------------------------- with the trained model


def test_ready_is_200_when_every_part_answers_and_names_the_action_server_once_stopped(
    live_bot: LocalStack, postgres_url: str
):
    vault = Vault(create_schema(postgres_url), Fernet.generate_key())
    env = {
        "ACTION_SERVER_URLS": live_bot.env["ACTION_SERVER_URLS"],
        "REDIS_URL": redis_url(REDIS_DATABASE),
    }

    async def all_ready(client: TestClient) -> None:
        reply = await client.get("/health/ready")
        body = await reply.json()
        assert (reply.status, body["failing"]) == (200, []), body
        assert set(body["parts"]) == {"rasa-0", "actions-0", "database", "redis"}

    async def actions_down(client: TestClient) -> None:
        reply = await client.get("/health/ready")
        body = await reply.json()
        assert (reply.status, body["failing"]) == (503, ["actions-0"]), body

    gateway(all_ready, live_bot.url, vault=vault, **env)
    # The stack's own gateway process, as ./scripts/run starts it (SQLite, no Redis).
    assert requests.get(f"{live_bot.gateway_url}/health/ready", timeout=10).status_code == 200
    live_bot.stop_process("actions")
    try:
        gateway(actions_down, live_bot.url, vault=vault, **env)
        stack_probe = requests.get(f"{live_bot.gateway_url}/health/ready", timeout=10)
        assert stack_probe.status_code == 503
        assert stack_probe.json()["failing"] == ["actions-0"]
    finally:
        live_bot.start_process("actions")
    gateway(all_ready, live_bot.url, vault=vault, **env)


@pytest.fixture()
def strict_gateway(live_bot: LocalStack) -> Iterator[str]:
    """A real gateway process in front of the live stack's Rasa, that lets one conversation
    send 2 messages in a burst (then 1 per minute)."""
    port = free_port()
    env = {**live_bot.env, "GATEWAY_RATE_BURST": "2", "GATEWAY_RATE_PER_MINUTE": "1"}
    process = subprocess.Popen(
        [gateway_python(), "-m", "bot.gateway", "--port", str(port)],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/health/live", process, timeout=60)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_counters_follow_real_conversations(strict_gateway: str, live_bot: LocalStack):
    voter = requests.Session()

    def say(text: str) -> requests.Response:
        return voter.post(f"{strict_gateway}/api/chat", json={"message": text}, timeout=30)

    answered = say("quand est-ce qu'on vote ?")
    assert answered.status_code == 200
    assert "6 décembre 2018" in texts(answered.json()["messages"])
    out_of_scope = say("recette de la tarte aux pommes")
    assert out_of_scope.status_code == 200
    assert say("et pour les AESH ?").status_code == 429  # the burst of 2 is spent

    page = requests.get(f"{strict_gateway}/metrics", timeout=10).text
    web = {"channel": "web"}
    assert sample(page, "assistant_turns_total", outcome="answered", **web) == 1
    assert sample(page, "assistant_turns_total", outcome="fallback", **web) == 1
    assert sample(page, "assistant_turns_total", outcome="refused", **web) == 1
    assert sample(page, "assistant_turns_total", outcome="error", **web) == 0
    assert sample(page, "assistant_rate_limited_total", limit="conversation") == 1
    assert sample(page, "assistant_turn_duration_seconds_count", **web) == 2
    assert sample(page, "assistant_turn_duration_seconds_sum", **web) > 0
    assert sample(page, "assistant_intents_total", intent="voting_dates") == 1
    assert sample(page, "assistant_intents_total", intent="out_of_scope") == 1
    # No personal data and no conversation id in any label.
    cookie = voter.cookies.get("sid")
    assert cookie and cookie not in page and "web-" not in page and "pommes" not in page


def test_the_action_server_counts_portal_calls_by_outcome(live_bot: LocalStack):
    metrics = f"http://127.0.0.1:{live_bot.action_port}/metrics"
    series = {"request": "password_reset", "outcome": "accepted"}
    calls = "assistant_portal_calls_total"
    before = sample(requests.get(metrics, timeout=10).text, calls, **series)
    live_bot.chat("mot de passe oublié", voter="metrics-reset")
    done = live_bot.chat("marie.exemple@ac-lyon.fr", voter="metrics-reset")
    assert done, "the reset was answered"
    page = requests.get(metrics, timeout=10).text
    assert sample(page, calls, **series) - before == 1
    assert "marie" not in page and "metrics-reset" not in page


def test_who_may_read_the_metrics(monkeypatch):
    for local in ("127.0.0.1", "::1", "::ffff:127.0.0.1"):
        assert may_read_metrics(local, None), local
    monkeypatch.delenv("METRICS_TOKEN", raising=False)
    assert not may_read_metrics("203.0.113.7", "Bearer ")  # no token set: loopback only
    monkeypatch.setenv("METRICS_TOKEN", "s3cret")
    assert may_read_metrics("203.0.113.7", "Bearer s3cret")
    for wrong in (None, "", "s3cret", "Bearer s3cre", "Bearer s3cret2", "Basic s3cret"):
        assert not may_read_metrics("203.0.113.7", wrong), wrong
    assert not may_read_metrics("not-an-address", None)
