"""The public port runs in an environment of its own: a current aiohttp, and no Rasa in the process.

`.venv-gateway` is installed from `requirements-gateway.lock` by `scripts/run` and `scripts/test`;
the local and production stacks start the gateway with its Python.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import requests
from cryptography.fernet import Fernet

from bot.config import REPO_ROOT
from bot.local_stack import GATEWAY_VENV_PYTHON, free_port, gateway_python, wait_for

# The first aiohttp release with the fixes of the advisories listed in docs/security.md.
FIXED_AIOHTTP = (3, 13, 3)
GATEWAY_MODULE = "bot.gateway"


def gateway_env_python() -> str:
    assert GATEWAY_VENV_PYTHON.exists(), "run ./scripts/test: it installs .venv-gateway"
    return str(GATEWAY_VENV_PYTHON)


def run_in_gateway_env(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [gateway_env_python(), "-c", code], capture_output=True, text=True, cwd=REPO_ROOT
    )


def test_the_gateway_environment_has_a_current_aiohttp_and_cannot_import_rasa():
    version = run_in_gateway_env("import aiohttp; print(aiohttp.__version__)").stdout.strip()
    assert tuple(int(part) for part in version.split(".")[:3]) >= FIXED_AIOHTTP
    for library in ("rasa", "rasa_sdk", "tensorflow", "sanic"):
        missing = run_in_gateway_env(f"import {library}")
        assert missing.returncode == 1 and "ModuleNotFoundError" in missing.stderr, library
    lock = (REPO_ROOT / "requirements-gateway.lock").read_text()
    assert re.search(r"^aiohttp==3\.1[3-9]\.", lock, re.MULTILINE)


def test_the_stacks_start_the_gateway_with_its_own_python():
    assert gateway_python() == gateway_env_python()


def test_the_gateway_process_imports_neither_rasa_nor_rasa_sdk(tmp_path: Path):
    """Run where Rasa *is* installed (the main environment), with Python's import log on,
    through the pages, the chat API, the console and the webhooks; then read the log."""
    port = free_port()
    env = {
        **os.environ,
        "BOT_DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "BOT_VAULT_KEY": Fernet.generate_key().decode(),
        "RASA_URL": f"http://127.0.0.1:{free_port()}",  # nothing answers there
        "GATEWAY_RASA_TOKEN": "token",
        "GATEWAY_SESSION_KEY": "session-key",
        "TELEGRAM_TOKEN": "123:abc",
        "TELEGRAM_SECRET_TOKEN": "secret",
        "SLACK_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "signing",
    }
    subprocess.run(
        [sys.executable, "-m", "bot.knowledge", "load"], cwd=REPO_ROOT, env=env, check=True
    )
    log = tmp_path / "imports.log"
    with log.open("w") as stderr:
        gateway = subprocess.Popen(
            [sys.executable, "-X", "importtime", "-m", GATEWAY_MODULE, "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_for(f"{base}/health", gateway)
            http = requests.Session()
            assert http.get(f"{base}/", timeout=10).status_code == 200
            chat = http.post(f"{base}/api/chat", json={"message": "webmail Lyon"}, timeout=10)
            assert chat.status_code == 503  # Rasa does not answer: said in French, nothing lost
            assert http.get(f"{base}/console", timeout=10).status_code == 200
            webhook = http.post(f"{base}/webhooks/telegram", json={}, timeout=10)
            assert webhook.status_code in (401, 403, 404)
            time.sleep(0.5)
        finally:
            gateway.terminate()
            gateway.wait(timeout=30)
    imported = re.findall(r"^import time:.*\|\s*(\S+)\s*$", log.read_text(), re.MULTILINE)
    assert "aiohttp" in imported and "bot.gateway.relay" in [m.strip() for m in imported]
    assert [m for m in imported if m.split(".")[0] in ("rasa", "rasa_sdk")] == []
