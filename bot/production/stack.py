"""The production layout on one machine: PostgreSQL for our database and Rasa's tracker store,
Redis for the conversation locks and the gateways' shared state, N Rasa replicas each with its
own action server, the gateway in front sending each conversation always to the same replica
(or M gateways behind nginx, `bot.production.proxy`), and the simulated portal unless
`PORTAL_URL` points at a real one.

`ProductionStack` has the shape of `bot.local_stack.LocalStack` (tests and benchmarks use
either); `python -m bot.production` runs it in the foreground.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

import requests
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

from bot import logs
from bot.config import REPO_ROOT
from bot.local_stack import (
    chat,
    free_port,
    gateway_python,
    peak_memory_mb,
    wait_for,
)
from bot.production.proxy import proxy_command

logger = logging.getLogger(__name__)

DEFAULTS = {
    "BOT_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/assistant",
    "TRACKER_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/assistant_tracker",
    "PORTAL_DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/assistant_portal",
    "REDIS_URL": "redis://127.0.0.1:6379/1",
}
LOCK_STORE = "bot.production.lock_store.AtomicRedisLockStore"


def production_settings(env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment with the production defaults filled in (the environment wins)."""
    env = dict(os.environ if env is None else env)
    for name, value in DEFAULTS.items():
        env.setdefault(name, value)
    return env


def ensure_database(url: str) -> bool:
    """Create the PostgreSQL database named in `url` if it does not exist; True if created.
    Other dialects (SQLite) create their file themselves."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        return False
    admin = create_engine(
        parsed.set(database="postgres"), isolation_level="AUTOCOMMIT", hide_parameters=True
    )
    try:
        with admin.connect() as connection:
            exists = connection.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": parsed.database}
            ).first()
            if not exists:
                quoted = admin.dialect.identifier_preparer.quote(parsed.database)
                connection.execute(text(f"CREATE DATABASE {quoted}"))
    finally:
        admin.dispose()
    return not exists


def tracker_store_config(url: str) -> dict[str, object]:
    """Rasa's `tracker_store` endpoint for the SQL database at `url`."""
    parsed: URL = make_url(url)
    config: dict[str, object] = {
        "type": "SQL",
        "dialect": parsed.drivername,
        "url": parsed.host or "",
        "db": parsed.database,
    }
    if parsed.port:
        config["port"] = parsed.port
    if parsed.username:
        config["username"] = parsed.username
    if parsed.password:
        config["password"] = parsed.password
    if parsed.query:
        config["query"] = dict(parsed.query)
    return config


def endpoints_yaml(action_url: str, tracker_url: str, env: dict[str, str]) -> str:
    """One replica's endpoints.yml (JSON is YAML): its action server, the shared tracker store,
    the shared lock store (`REDIS_URL`, `LOCK_LIFETIME_SECONDS`, `LOCK_ACQUIRE_TIMEOUT_SECONDS`)."""
    lock_store: dict[str, object] = {"type": LOCK_STORE, "url": env["REDIS_URL"]}
    for name, key in (
        ("LOCK_LIFETIME_SECONDS", "lock_lifetime"),
        ("LOCK_ACQUIRE_TIMEOUT_SECONDS", "acquire_timeout"),
    ):
        if env.get(name):
            lock_store[key] = float(env[name])
    endpoints = {
        "action_endpoint": {"url": action_url, "token": env["ACTION_SERVER_TOKEN"]},
        "tracker_store": tracker_store_config(tracker_url),
        "lock_store": lock_store,
    }
    return json.dumps(endpoints, indent=2) + "\n"


class ProductionStack:
    """Portal, N x (actions, Rasa), gateway (or `gateways` of them behind nginx, the proxy on
    the gateway's port and the gateways on free loopback ports); same interface as `LocalStack`.

    Ports are free loopback ports unless `ports` gives the first of each kind (gateway, portal,
    rasa, actions; replica i uses rasa + i and actions + i). Each process's output goes to
    `workdir/logs/<name>.log`, or with `capture_logs=False` to our standard output (or to
    `LOG_DIR`, bot/logs.py)."""

    def __init__(
        self,
        workdir: Path,
        model: Path,
        replicas: int = 2,
        env: dict[str, str] | None = None,
        ports: dict[str, int] | None = None,
        gateway_host: str = "127.0.0.1",
        capture_logs: bool = True,
        gateways: int = 1,
    ) -> None:
        self.workdir = workdir
        self.capture_logs = capture_logs
        self.model = model
        self.replicas = replicas
        if gateways < 1:
            raise ValueError(f"BOT_GATEWAYS : au moins une passerelle (reçu : {gateways})")
        self.gateways = gateways
        self.gateway_host = gateway_host
        base = production_settings({**os.environ, **(env or {})})
        self.simulated_portal = not base.get("PORTAL_URL")

        def port(kind: str, i: int = 0) -> int:
            return ports[kind] + i if ports else free_port()

        self.gateway_port, self.portal_port = port("gateway"), port("portal")
        self.rasa_ports = [port("rasa", i) for i in range(replicas)]
        self.action_ports = [port("actions", i) for i in range(replicas)]
        self.rasa_urls = [f"http://127.0.0.1:{p}" for p in self.rasa_ports]
        self.url = self.rasa_urls[0]
        self.gateway_url = f"http://127.0.0.1:{self.gateway_port}"  # the proxy's, if any
        # Behind the proxy, each gateway on its own loopback port.
        self.gateway_ports = (
            [self.gateway_port] if gateways == 1 else [free_port() for _ in range(gateways)]
        )
        self.gateway_urls = [f"http://127.0.0.1:{p}" for p in self.gateway_ports]
        self.portal_url = base.get("PORTAL_URL") or f"http://127.0.0.1:{self.portal_port}"
        self.env = {
            "RASA_TELEMETRY_ENABLED": "false",
            "BOT_VAULT_KEY": Fernet.generate_key().decode(),  # shared by gateway and actions
            "GATEWAY_RASA_TOKEN": secrets.token_urlsafe(24),  # the replicas trust only it
            "ACTION_SERVER_TOKEN": secrets.token_urlsafe(24),  # the action servers: only Rasa
            "GATEWAY_SESSION_KEY": secrets.token_urlsafe(24),  # signs the session cookies
            "PORTAL_TOKEN": secrets.token_urlsafe(24),
            **base,
            "PORTAL_URL": self.portal_url,
            "RASA_URLS": ",".join(self.rasa_urls),
            "ACTION_SERVER_URLS": ",".join(f"http://127.0.0.1:{p}" for p in self.action_ports),
            "RASA_URL": self.url,
            # Limits, buttons, de-duplication and live events shared by the gateways.
            "GATEWAY_REDIS_URL": base.get("GATEWAY_REDIS_URL") or base["REDIS_URL"],
        }
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self._http = requests.Session()
        self._voters: dict[str, requests.Session] = {}

    def prepare(self) -> None:
        """Create the databases if missing, migrate ours, seed the knowledge base, and create
        Rasa's tracker table once (replicas starting together would race to create it)."""
        names = ["BOT_DATABASE_URL", "TRACKER_DATABASE_URL"]
        if self.simulated_portal:
            names.append("PORTAL_DATABASE_URL")
        for name in names:
            if ensure_database(self.env[name]):
                logger.info("created database %s", make_url(self.env[name]).database)
        for step in (["bot.production", "migrate"], ["bot.knowledge", "load"]):
            self._run_once([sys.executable, "-m", *step])
        tracker = tracker_store_config(self.env["TRACKER_DATABASE_URL"])
        self._run_once(
            [sys.executable, "-c", CREATE_TRACKER_TABLES, json.dumps(tracker)],
        )

    def _run_once(self, argv: list[str]) -> None:
        done = subprocess.run(argv, cwd=REPO_ROOT, env=self.env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv[1:3])} failed:\n{done.stderr[-2000:]}")

    def start(self) -> ProductionStack:
        self.prepare()
        if self.simulated_portal:
            self._spawn(
                "portal",
                [sys.executable, "-m", "bot.portal", "serve", "--port", str(self.portal_port)],
            )
        for i in range(self.replicas):
            action_url = f"http://127.0.0.1:{self.action_ports[i]}/webhook"
            endpoints = self.workdir / f"endpoints-{i}.yml"
            endpoints.write_text(
                endpoints_yaml(action_url, self.env["TRACKER_DATABASE_URL"], self.env)
            )
            self._spawn(
                f"actions-{i}",
                [sys.executable, "-m", "bot.actions"],
                ACTION_PORT=str(self.action_ports[i]),
            )
            logging_config = logs.rasa_config(
                f"rasa-{i}", self.workdir / f"logging-rasa-{i}.yml", self.env
            )
            self._spawn(
                f"rasa-{i}",
                [
                    sys.executable, "-m", "rasa", "run", "--model", str(self.model),
                    "--interface", "127.0.0.1", "--port", str(self.rasa_ports[i]),
                    "--endpoints", str(endpoints),
                    "--credentials", str(REPO_ROOT / "credentials.yml"),
                    "--logging-config-file", str(logging_config),
                ],
            )  # fmt: skip
        for name, host, port in self._gateway_listeners():
            self._spawn(
                name,
                [gateway_python(), "-m", "bot.gateway", "--host", host, "--port", str(port)],
            )
        if self.gateways > 1:
            listen = f"{self.gateway_host}:{self.gateway_port}"
            upstreams = [f"127.0.0.1:{port}" for port in self.gateway_ports]
            errors = self.logs / "proxy-errors.log" if self.capture_logs else "stderr"
            self._spawn("proxy", proxy_command(self.workdir / "proxy", errors, listen, upstreams))
        if self.simulated_portal:
            wait_for(f"{self.portal_url}/health", self.processes["portal"])
        for i in range(self.replicas):
            wait_for(
                f"http://127.0.0.1:{self.action_ports[i]}/health", self.processes[f"actions-{i}"]
            )
            wait_for(f"{self.rasa_urls[i]}/", self.processes[f"rasa-{i}"])
        for (name, _, _), url in zip(self._gateway_listeners(), self.gateway_urls, strict=True):
            wait_for(f"{url}/health", self.processes[name])
        if self.gateways > 1:
            wait_for(f"{self.gateway_url}/health", self.processes["proxy"])
        return self

    @property
    def log_place(self) -> str:
        """Where the processes' logs are, in words for the operator."""
        if self.capture_logs:
            return str(self.logs)
        return self.env.get("LOG_DIR") or "la sortie standard"

    def _gateway_listeners(self) -> list[tuple[str, str, int]]:
        """(process name, host, port) of each gateway: one on the public address, or several
        on loopback behind the proxy."""
        if self.gateways == 1:
            return [("gateway", self.gateway_host, self.gateway_port)]
        return [(f"gateway-{i}", "127.0.0.1", p) for i, p in enumerate(self.gateway_ports)]

    def _spawn(self, name: str, argv: list[str], **env: str) -> None:
        log = (self.logs / f"{name}.log").open("wb") if self.capture_logs else None
        self.processes[name] = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env={**self.env, "LOG_SERVICE": name, **env},
            stdout=log,
            stderr=subprocess.STDOUT if log else None,
        )

    def chat(self, text: str, voter: str = "voter", gateway: int | None = None) -> list[dict]:
        """Send one message as the browser of `voter`, through the public port (or straight to
        gateway number `gateway`); the bot's messages."""
        url = self.gateway_url if gateway is None else self.gateway_urls[gateway]
        return chat(self._voters.setdefault(voter, requests.Session()), url, text)

    def peak_memory_mb(self, name: str = "rasa-0") -> float:
        """Peak resident memory (VmHWM) of one of the processes, in MB."""
        return peak_memory_mb(self.processes[name])

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs.glob("*.log"))

    def stop(self) -> None:
        # Every process is asked to stop at once, then each gets 20 s before it is killed.
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# Run in a subprocess: importing Rasa's tracker store costs memory the launcher need not keep.
CREATE_TRACKER_TABLES = """
import json, sys
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
SQLTrackerStore(Domain.empty(), **{("host" if k == "url" else k): v
    for k, v in json.loads(sys.argv[1]).items() if k != "type"})
"""
