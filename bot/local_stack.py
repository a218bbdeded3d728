"""Start the Rasa server and the action server on free loopback ports (tests, benchmarks)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from bot.config import REPO_ROOT

VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    """A Rasa server (REST channel) and its action server, each in its own process."""

    def __init__(self, workdir: Path, model: Path, env: dict[str, str] | None = None) -> None:
        self.model = model
        self.workdir = workdir
        self.action_port, self.rasa_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.rasa_port}"
        self.env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", **(env or {})}
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self._http = requests.Session()

    def start(self) -> LocalStack:
        endpoints = self.workdir / "endpoints.yml"
        endpoints.write_text(
            f'action_endpoint:\n  url: "http://127.0.0.1:{self.action_port}/webhook"\n'
        )
        self._spawn(
            "actions", [sys.executable, "-m", "bot.actions"], ACTION_PORT=str(self.action_port)
        )
        self._spawn(
            "rasa",
            [
                str(VENV_BIN / "rasa"), "run", "--model", str(self.model),
                "--interface", "127.0.0.1", "--port", str(self.rasa_port),
                "--endpoints", str(endpoints), "--credentials", str(REPO_ROOT / "credentials.yml"),
            ],
        )  # fmt: skip
        wait_for(f"http://127.0.0.1:{self.action_port}/health", self.processes["actions"])
        wait_for(f"{self.url}/", self.processes["rasa"])
        return self

    def _spawn(self, name: str, argv: list[str], **env: str) -> None:
        log = (self.logs / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            argv, cwd=REPO_ROOT, env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT
        )

    def say(self, text: str, sender: str = "tester") -> list[dict]:
        """Send one message through the REST channel; the bot's messages."""
        reply = self._http.post(
            f"{self.url}/webhooks/rest/webhook",
            json={"sender": sender, "message": text},
            timeout=30,
        )
        reply.raise_for_status()
        return reply.json()

    def peak_memory_mb(self, name: str = "rasa") -> float:
        """Peak resident memory (VmHWM) of one of the processes, in MB."""
        status = Path(f"/proc/{self.processes[name].pid}/status").read_text()
        line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs.glob("*.log"))

    def stop(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
