"""Start the whole assistant on free loopback ports (tests, benchmarks): the simulated portal,
the action server, the Rasa server and the gateway, each in its own process."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests
from cryptography.fernet import Fernet

from bot import logs
from bot.config import REPO_ROOT

# The gateway runs in its own environment (requirements-gateway.lock: a current aiohttp, no
# Rasa), made by scripts/run and scripts/test; the main one only where it was never made.
GATEWAY_VENV_PYTHON = REPO_ROOT / ".venv-gateway" / "bin" / "python"


def gateway_python() -> str:
    return str(GATEWAY_VENV_PYTHON) if GATEWAY_VENV_PYTHON.exists() else sys.executable


# The gateway's limits (bot/gateway/limits.py) raised for scripted voters on one address.
TEST_LIMITS = {
    "GATEWAY_RATE_PER_MINUTE": "6000",
    "GATEWAY_RATE_BURST": "1000",
    "GATEWAY_ADDRESS_RATE_PER_MINUTE": "60000",
    "GATEWAY_ADDRESS_RATE_BURST": "10000",
    "GATEWAY_ADDRESS_NEW_CONVERSATIONS_PER_MINUTE": "6000",
    "GATEWAY_CHORE_ATTEMPTS_PER_ADDRESS_PER_MINUTE": "6000",
    "GATEWAY_CHORE_ATTEMPTS_PER_MINUTE": "6000",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_memory_mb(process: subprocess.Popen) -> float:
    """Peak resident memory (VmHWM) of a running process, in MB."""
    status = Path(f"/proc/{process.pid}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def chat(session: requests.Session, gateway_url: str, text: str) -> list[dict]:
    """One message to the gateway's chat API with `session`'s cookie; the bot's messages."""
    reply = session.post(f"{gateway_url}/api/chat", json={"message": text}, timeout=30)
    reply.raise_for_status()
    return reply.json()["messages"]


def wait_for(url: str, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {process.returncode}")
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise TimeoutError(url)


class LocalStack:
    """Portal, actions, Rasa and gateway; `say` talks to Rasa's gateway channel directly
    (already redacted text), `chat` talks to the gateway as a browser would (one cookie per
    voter).

    Rasa keeps conversations in memory, in a SQLite file (`tracker_db=True`) or in PostgreSQL
    (`tracker_store_url="postgresql://user@host:port/db"`); `lock_store_url="redis://..."`
    makes it take conversation locks in Redis (`bot.production.lock_store`). Fault tests stop
    and start single processes: `stop_process`, `start_process`, `restart`."""

    def __init__(
        self,
        workdir: Path,
        model: Path,
        env: dict[str, str] | None = None,
        tracker_db: bool = False,
        tracker_store_url: str | None = None,
        lock_store_url: str | None = None,
    ) -> None:
        self.model = model
        self.tracker_db = workdir / "tracker.db" if tracker_db else None
        self.tracker_store_url = tracker_store_url
        self.lock_store_url = lock_store_url
        self.workdir = workdir
        self.action_port, self.rasa_port = free_port(), free_port()
        self.portal_port, self.gateway_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.rasa_port}"
        self.gateway_url = f"http://127.0.0.1:{self.gateway_port}"
        self.portal_url = f"http://127.0.0.1:{self.portal_port}"
        self.env = {
            **os.environ,
            "RASA_TELEMETRY_ENABLED": "false",
            "BOT_DATABASE_URL": f"sqlite:///{workdir / 'bot.db'}",
            "BOT_VAULT_KEY": Fernet.generate_key().decode(),
            "PORTAL_DATABASE_URL": f"sqlite:///{workdir / 'portal.db'}",
            "PORTAL_TOKEN": "local-stack-portal-token",
            "PORTAL_URL": self.portal_url,
            "RASA_URL": self.url,
            "ACTION_SERVER_URLS": f"http://127.0.0.1:{self.action_port}",  # the gateway's probe
            # Loopback services answer only their callers (docs/security.md).
            "GATEWAY_RASA_TOKEN": secrets.token_urlsafe(24),
            "ACTION_SERVER_TOKEN": secrets.token_urlsafe(24),
            "GATEWAY_SESSION_KEY": secrets.token_urlsafe(24),  # cookies survive a restart
            # Tests script conversations faster than people, all from 127.0.0.1.
            **TEST_LIMITS,
            # As in the local mode: each process writes logs/<name>.log, rotated (bot/logs.py).
            "LOG_DIR": str(workdir / "logs"),
            **(env or {}),
        }
        self.processes: dict[str, subprocess.Popen] = {}
        # name -> (argv, extra environment, health URL): what `start_process` runs again.
        self._commands: dict[str, tuple[list[str], dict[str, str], str]] = {}
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self._http = requests.Session()
        self._voters: dict[str, requests.Session] = {}

    def start(self) -> LocalStack:
        self.prepare()
        for name, (argv, env, _) in self._commands.items():
            self._spawn(name, argv, **env)
        for name, (_, _, health) in self._commands.items():
            wait_for(health, self.processes[name])
        return self

    def prepare(self) -> None:
        """Seed our database and write Rasa's files: then `start_process` can start any one of
        the processes (`start` starts them all)."""
        # Create and seed our database once, before several processes open it at the same time.
        subprocess.run(
            [sys.executable, "-m", "bot.knowledge", "load"],
            cwd=REPO_ROOT, env=self.env, check=True, capture_output=True,
        )  # fmt: skip
        endpoints = self.workdir / "endpoints.yml"
        endpoints.write_text(self._endpoints())
        logging_config = logs.rasa_config("rasa", self.workdir / "logging-rasa.yml", self.env)
        # `python -m rasa` from the repository: Rasa can then import bot.logs for its logging.
        rasa = [
            sys.executable, "-m", "rasa", "run", "--model", str(self.model),
            "--interface", "127.0.0.1", "--port", str(self.rasa_port),
            "--endpoints", str(endpoints), "--credentials", str(REPO_ROOT / "credentials.yml"),
            "--logging-config-file", str(logging_config),
        ]  # fmt: skip
        self._commands = {
            "portal": (
                [sys.executable, "-m", "bot.portal", "serve", "--port", str(self.portal_port)],
                {},
                f"{self.portal_url}/health",
            ),
            "actions": (
                [sys.executable, "-m", "bot.actions"],
                {"ACTION_PORT": str(self.action_port)},
                f"http://127.0.0.1:{self.action_port}/health",
            ),
            "rasa": (rasa, {}, f"{self.url}/"),
            "gateway": (
                [gateway_python(), "-m", "bot.gateway", "--port", str(self.gateway_port)],
                {},
                f"{self.gateway_url}/health",
            ),
        }

    def _endpoints(self) -> str:
        config = (
            f'action_endpoint:\n  url: "http://127.0.0.1:{self.action_port}/webhook"\n'
            "  token: ${ACTION_SERVER_TOKEN}\n"
        )
        if self.tracker_store_url:  # conversations in PostgreSQL
            url = urlsplit(self.tracker_store_url)
            config += (
                "tracker_store:\n  type: SQL\n  dialect: postgresql\n"
                f'  url: "{url.hostname}"\n  port: {url.port or 5432}\n'
                f'  db: "{url.path.lstrip("/")}"\n  username: "{url.username or "postgres"}"\n'
            )
            if url.password:
                config += f'  password: "{url.password}"\n'
        elif self.tracker_db:  # conversations persisted in a SQLite file (default: in memory)
            config += f'tracker_store:\n  type: SQL\n  dialect: sqlite\n  db: "{self.tracker_db}"\n'
        if self.lock_store_url:
            config += (
                "lock_store:\n  type: bot.production.lock_store.AtomicRedisLockStore\n"
                f'  url: "{self.lock_store_url}"\n'
            )
        return config

    def stop_process(self, name: str, kill: bool = False) -> None:
        """Stop one process (SIGTERM, or SIGKILL as in a crash) and wait until it is gone."""
        process = self.processes[name]
        if process.poll() is None:
            if kill:
                process.kill()
            else:
                process.terminate()
            process.wait(timeout=30)

    def start_process(self, name: str, env: dict[str, str] | None = None) -> None:
        """Start one process again, as `start` did (with `env` added to its environment from
        now on), and wait until it answers its health check."""
        argv, own_env, health = self._commands[name]
        if name in self.processes and self.processes[name].poll() is None:
            raise RuntimeError(f"{name} is still running")
        if env:
            own_env = {**own_env, **env}
            self._commands[name] = (argv, own_env, health)
        self._spawn(name, argv, **own_env)
        wait_for(health, self.processes[name])

    def restart(self, name: str, kill: bool = False, env: dict[str, str] | None = None) -> None:
        self.stop_process(name, kill)
        self.start_process(name, env)

    def _spawn(self, name: str, argv: list[str], **env: str) -> None:
        # Its log lines go to logs/<name>.log (LOG_DIR); what bypasses logging (a crash before
        # logging starts, TensorFlow's messages) to logs/<name>.out. A restart adds to both.
        out = (self.logs / f"{name}.out").open("ab")
        self.processes[name] = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env={**self.env, "LOG_SERVICE": name, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )

    def say(self, text: str, sender: str = "tester") -> list[dict]:
        """Send one message to Rasa as the gateway does (its channel, its token); the bot's
        messages."""
        reply = self._http.post(
            f"{self.url}/webhooks/gateway/webhook",
            json={"sender": sender, "message": text},
            headers={"Authorization": f"Bearer {self.env['GATEWAY_RASA_TOKEN']}"},
            timeout=30,
        )
        reply.raise_for_status()
        return reply.json()["messages"]

    def chat(self, text: str, voter: str = "voter") -> list[dict]:
        """Send one message through the gateway, as the browser of `voter`; the bot's messages."""
        return chat(self._voters.setdefault(voter, requests.Session()), self.gateway_url, text)

    def portal_outbox(self) -> list[dict]:
        """What the simulated portal would have sent (SMS and e-mails)."""
        reply = self._http.get(
            f"{self.portal_url}/api/v1/outbox",
            headers={"Authorization": f"Bearer {self.env['PORTAL_TOKEN']}"},
            timeout=10,
        )
        reply.raise_for_status()
        return reply.json()["messages"]

    def peak_memory_mb(self, name: str = "rasa") -> float:
        """Peak resident memory (VmHWM) of one of the processes, in MB."""
        return peak_memory_mb(self.processes[name])

    def tracker_text(self) -> str:
        """The raw bytes of the tracker store file, as text (empty when conversations are in
        memory)."""
        if self.tracker_db is None or not self.tracker_db.exists():
            return ""
        return self.tracker_db.read_bytes().decode("utf-8", errors="replace")

    def log_text(self) -> str:
        """Every log file of the processes, rotated ones included."""
        files = sorted(p for p in self.logs.iterdir() if p.is_file())
        return "\n".join(p.read_text(errors="replace") for p in files)

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
