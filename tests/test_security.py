"""Secure by default: security headers on every gateway response, a French 500 that logs no
user text, Rasa and the action server listening on loopback only with Rasa's HTTP API off, and
no secret written in the repository."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import requests
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.fernet import Fernet

from bot.config import REPO_ROOT
from bot.db import create_schema
from bot.gateway.app import create_app
from bot.gateway.security import INTERNAL_ERROR, UNREADABLE_CHARSET
from bot.local_stack import LocalStack, free_port, wait_for
from bot.personal_data.vault import Vault

EVERY_KIND_OF_RESPONSE = [
    ("GET", "/", 200),  # the demo page
    ("GET", "/static/widget.js", 200),
    ("GET", "/static/widget.css", 200),
    ("GET", "/static/nothing-here.js", 404),
    ("GET", "/health", 200),
    ("GET", "/health/live", 200),
    ("GET", "/health/ready", 503),  # no Rasa behind this gateway
    ("GET", "/metrics", 200),  # from loopback
    ("GET", "/api/history", 200),
    ("POST", "/api/chat", 400),
    ("GET", "/console", 302),
    ("GET", "/console/", 200),
    ("GET", "/console/console.js", 200),
    ("GET", "/console/api/me", 401),
    ("GET", "/nowhere", 404),
]


def on_gateway(scenario) -> None:
    async def main() -> None:
        with tempfile.TemporaryDirectory() as folder:
            vault = Vault(create_schema(f"sqlite:///{folder}/bot.db"), Fernet.generate_key())
            app = create_app(f"http://127.0.0.1:{free_port()}", vault=vault)

            async def broken(request: web.Request) -> web.Response:
                raise KeyError(await request.text())  # a bug that quotes the user's text

            app.router.add_post("/test/broken", broken)
            async with TestClient(TestServer(app)) as client:
                await scenario(client)

    asyncio.run(main())


def test_every_response_has_the_security_headers_and_no_page_can_be_framed():
    async def scenario(client: TestClient) -> None:
        for method, path, status in EVERY_KIND_OF_RESPONSE:
            reply = await client.request(method, path, data=b"{", allow_redirects=False)
            assert reply.status == status, path
            headers = reply.headers
            csp = headers.get("Content-Security-Policy", "")
            assert "frame-ancestors 'none'" in csp, path
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
            assert headers["X-Content-Type-Options"] == "nosniff", path
            assert headers["X-Frame-Options"] == "DENY", path
            assert headers["Referrer-Policy"] == "no-referrer", path
        page = (await client.get("/")).headers["Content-Security-Policy"]
        # The demo page runs the widget: its own script, styles and API, nothing else.
        for directive in ("default-src 'self'", "script-src 'self'", "connect-src 'self'"):
            assert directive in page
        assert "object-src 'none'" in page and "base-uri 'none'" in page
        api = (await client.get("/api/history")).headers["Content-Security-Policy"]
        assert api.startswith("default-src 'none'")
        # A page revalidated by the browser (304, no Content-Type) keeps the page's policy: the
        # browser copies the 304's headers onto the page in its cache.
        first = await client.get("/")
        again = await client.get("/", headers={"If-None-Match": first.headers["ETag"]})
        assert again.status == 304
        assert again.headers["Content-Security-Policy"] == page
        # The console keeps its own policy.
        console = (await client.get("/console/")).headers["Content-Security-Policy"]
        assert console.startswith("default-src 'self'") and "form-action 'self'" in console

    on_gateway(scenario)


def test_an_unexpected_error_is_a_french_json_500_logged_without_what_the_user_sent(caplog):
    caplog.set_level(logging.INFO)

    async def scenario(client: TestClient) -> None:
        reply = await client.post("/test/broken", data="mon NUMEN est 01E9501234ABC")
        assert reply.status == 500
        assert await reply.json() == {"error": INTERNAL_ERROR}
        assert "Content-Security-Policy" in reply.headers
        assert (await client.get("/health")).status == 200  # and the gateway goes on

    on_gateway(scenario)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "unexpected KeyError on POST /test/broken" in logged
    assert "01E9501234ABC" not in logged and "NUMEN" not in logged


@pytest.mark.parametrize("charset", ["klingon", "rot13", "utf-8\\x00"])
def test_a_body_in_an_unknown_charset_is_a_french_400_not_a_500(charset):
    async def scenario(client: TestClient) -> None:
        for path in ("/api/chat", "/console/api/login", "/test/broken"):
            reply = await client.post(
                path,
                data='{"message": "bonjour"}',
                headers={"Content-Type": f"application/json; charset={charset}"},
            )
            assert reply.status == 400, path
            assert (await reply.json())["error"] == UNREADABLE_CHARSET
        assert UNREADABLE_CHARSET.startswith("Requête illisible")

    on_gateway(scenario)


def test_the_action_server_answers_only_with_the_shared_token(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "BOT_DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "ACTION_PORT": str(port),
        "ACTION_SERVER_TOKEN": "le-jeton-de-rasa",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "bot.actions"], cwd=REPO_ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{url}/health", server, timeout=120)
        call = {"next_action": "action_help", "sender_id": "x", "tracker": {}, "domain": {}}
        for token in (None, "", "mauvais-jeton"):
            params = {} if token is None else {"token": token}
            assert requests.get(f"{url}/actions", params=params, timeout=10).status_code == 401
            refused = requests.post(f"{url}/webhook", params=params, json=call, timeout=10)
            assert refused.status_code == 401
        listed = requests.get(f"{url}/actions", params={"token": "le-jeton-de-rasa"}, timeout=10)
        assert listed.status_code == 200 and {"name": "action_help"} in listed.json()
        # Its metrics answer this host without Rasa's token (bot/metrics.py decides who reads).
        metrics = requests.get(f"{url}/metrics", timeout=10)
        assert metrics.status_code == 200
        assert metrics.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        assert 'assistant_portal_calls_total{outcome="sent",request="voter_id_reissue"} 0.0' in (
            metrics.text
        )
    finally:
        server.terminate()
        server.wait(timeout=20)
    without = subprocess.run(
        [sys.executable, "-m", "bot.actions"], cwd=REPO_ROOT,
        env={**env, "ACTION_SERVER_TOKEN": ""}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert without.returncode != 0 and "ACTION_SERVER_TOKEN" in without.stderr


def test_rasa_serves_no_unauthenticated_channel():
    channels = yaml.safe_load((REPO_ROOT / "credentials.yml").read_text())
    assert list(channels) == ["bot.rasa_channel.GatewayInput"]  # no `rest:`
    endpoints = yaml.safe_load((REPO_ROOT / "endpoints.yml").read_text())
    assert endpoints["action_endpoint"]["token"] == "${ACTION_SERVER_TOKEN}"


def test_rasa_reads_the_action_server_token_from_the_environment(monkeypatch):
    # Rasa expands ${VAR} only in unquoted YAML values: a quoted one is sent as typed.
    from rasa.shared.utils.io import read_yaml

    monkeypatch.setenv("ACTION_SERVER_TOKEN", "secret-from-env")
    endpoints = read_yaml((REPO_ROOT / "endpoints.yml").read_text())
    assert endpoints["action_endpoint"]["token"] == "secret-from-env"


# ---------------------------------------------------------------------- the running assistant


def listening(pid: int) -> set[str]:
    """Addresses (host:port) on which process `pid` or its children accept TCP connections."""
    family = {pid}
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        family |= {int(child) for child in children.read_text().split()}
    table = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    addresses = set()
    for line in table.splitlines():
        owners = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if owners & family:
            addresses.add(line.split()[3])
    return addresses


def test_rasa_and_the_action_server_listen_on_loopback_only_and_rasa_has_no_http_api(
    live_bot: LocalStack,
):
    for name in ("rasa", "actions", "portal", "gateway"):
        addresses = listening(live_bot.processes[name].pid)
        assert addresses, f"{name} listens nowhere?"
        hosts = {address.rsplit(":", 1)[0] for address in addresses}
        assert hosts <= {"127.0.0.1", "[::1]"}, (name, addresses)
    # Without --enable-api, Rasa serves its channels only: no status, parse, tracker or model.
    for method, path in [
        ("GET", "/status"),
        ("POST", "/model/parse"),
        ("GET", "/conversations/tester/tracker"),
        ("POST", "/conversations/tester/messages"),
        ("PUT", "/model"),
        ("GET", "/domain"),
    ]:
        reply = requests.request(method, live_bot.url + path, json={"text": "x"}, timeout=10)
        assert reply.status_code in (404, 405), (path, reply.status_code)


# ---------------------------------------------------------------------- the repository

SECRET_PATTERNS = {
    "Slack token": r"xox[abpors]-[0-9A-Za-z-]{10,}",
    "Telegram bot token": r"\b\d{8,10}:[A-Za-z0-9_-]{35}\b",
    "private key": r"-----BEGIN (?:RSA |EC |OPENSSH |DSA )?PRIVATE KEY-----",
    "AWS access key": r"\bAKIA[0-9A-Z]{16}\b",
    "GitHub token": r"\bgh[pousr]_[A-Za-z0-9]{36}\b",
    "Fernet key": r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{43}=(?![A-Za-z0-9_=-])",
    "password in a URL": r"[a-z+]+://[^/\s:@'\"]+:[^/\s@'\"{}$]+@",
}
# Values that look like secrets on purpose: fakes in tests, Slack's documentation example.
KNOWN_FAKES = {
    "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",  # Slack's docs, tests/test_slack.py
    "xoxb-fuzz-not-a-real-token",
    "xoxb-",  # documentation: "it starts with xoxb-"
}


def test_no_secret_is_written_in_the_repository():
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    ).stdout.split("\0")  # fmt: skip
    found = []
    for name in filter(None, files):
        path = REPO_ROOT / name
        if not path.is_file() or path.suffix in {".png", ".jpg", ".gz", ".zip", ".tar"}:
            continue
        if path.stat().st_size > 2_000_000 or "node_modules" in path.parts:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for kind, pattern in SECRET_PATTERNS.items():
            for match in re.finditer(pattern, text):
                if match.group(0) not in KNOWN_FAKES:
                    found.append(f"{name}: {kind}: {match.group(0)[:12]}…")
    assert not found, found


@pytest.mark.parametrize("name", ["credentials.yml", "endpoints.yml"])
def test_rasa_configuration_files_take_their_secrets_from_the_environment(name):
    text = (REPO_ROOT / name).read_text()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if re.search(r"token|secret|password|key", key, re.IGNORECASE) and value.strip():
            assert value.strip().strip("\"'").startswith("${"), line
