"""Every process we start logs through bot/logs.py: timestamped lines naming the level, the
process and the logger; JSON lines with `LOG_FORMAT=json`; files rotated by size under
`LOG_DIR` (the local mode), standard output otherwise (the production mode).

The processes are started as the stacks start them (`LocalStack.start_process`, the production
entry point); the whole assistant's logs, Rasa's included, are read after live conversations
(`test_the_live_assistant_logs_timestamped_lines`)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import requests

from bot import startup_checks
from bot.config import REPO_ROOT
from bot.local_stack import LocalStack, free_port

# 2026-12-08 00:07:04,975 INFO gateway bot.gateway.app: …
TEXT_LINE = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) "
    r"(?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL) (?P<service>\S+) (?P<logger>\S+): "
)


def logged_lines(path: Path) -> list[str]:
    """The lines of a log file that start a record (a traceback's lines follow its record)."""
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def assert_text_log(path: Path, service: str, only_records: bool = True) -> None:
    """`path` holds timestamped records of `service`; with `only_records=False`, also what
    the process printed outside logging (a captured standard output and error)."""
    lines = logged_lines(path)
    assert lines, f"{path.name} is empty"
    starts = [TEXT_LINE.match(line) for line in lines]
    records = [m for m in starts if m]
    assert records, lines[:5]
    for match in records:
        assert match["service"] == service
        datetime.strptime(match["time"], "%Y-%m-%d %H:%M:%S,%f")
    if only_records:  # a line that starts no record continues the one above it (a traceback)
        assert TEXT_LINE.match(lines[0]), lines[0]


@pytest.fixture()
def stack(tmp_path: Path):
    """Local stacks whose processes are started one by one (Rasa only with a model)."""
    created: list[LocalStack] = []

    def make(model: Path = Path("no-model"), **env: str) -> LocalStack:
        local = LocalStack(tmp_path / f"stack-{len(created)}", model, env)
        local.prepare()
        created.append(local)
        return local

    yield make
    for local in created:
        local.stop()


def test_processes_started_by_the_local_stack_write_timestamped_rotating_files(stack):
    local = stack()
    for name in ("portal", "actions", "gateway"):
        local.start_process(name)
    requests.get(f"{local.gateway_url}/health", timeout=10)  # one access-log line at least
    local.stop()
    for name in ("portal", "actions", "gateway"):
        assert_text_log(local.logs / f"{name}.log", name)
    # The portal and the gateway said what they did at start-up, each in its own file.
    assert "demo voters imported" in (local.logs / "portal.log").read_text()
    assert "GET /health" in (local.logs / "gateway.log").read_text()


def test_json_lines_parse_and_carry_level_logger_and_message(stack):
    local = stack(LOG_FORMAT="json")
    for name in ("portal", "actions", "gateway"):  # both environments: .venv and .venv-gateway
        local.start_process(name)
    requests.get(f"{local.gateway_url}/health", timeout=10)
    local.stop()
    for name in ("portal", "actions", "gateway"):
        lines = logged_lines(local.logs / f"{name}.log")
        assert lines, name
        for line in lines:
            record = json.loads(line)  # every line is one JSON object
            assert record["service"] == name
            assert record["level"] in {"debug", "info", "warning", "error", "critical"}
            assert record["logger"] and isinstance(record["message"], str)
            assert datetime.fromisoformat(record["time"].replace("Z", "+00:00")).tzinfo
    portal = [json.loads(line) for line in logged_lines(local.logs / "portal.log")]
    assert any(
        r["logger"] == "bot.portal" and "demo voters imported" in r["message"] for r in portal
    )


def run_logging(tmp_path: Path, script: str, **env: str) -> subprocess.CompletedProcess:
    """Run `script` in a new Python process after `bot.logs.configure("essai")`."""
    code = "import logging, sys\nfrom bot import logs\nlogs.configure('essai')\n" + script
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={**os.environ, "LOG_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_log_file_rotates_at_its_size_limit(tmp_path):
    done = run_logging(
        tmp_path,
        "for i in range(400):\n    logging.getLogger('bot.essai').info('ligne %03d', i)\n",
        LOG_MAX_BYTES="4000",
        LOG_BACKUP_COUNT="2",
    )
    assert done.returncode == 0, done.stderr
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["essai.log", "essai.log.1", "essai.log.2"]  # two kept, older ones dropped
    for name in files:
        assert (tmp_path / name).stat().st_size <= 4000
    newest = logged_lines(tmp_path / "essai.log")
    assert newest[-1].endswith("ligne 399")
    # The kept files follow each other without a gap: .2, .1, then the current file.
    kept = [
        int(line.rsplit(" ", 1)[1])
        for name in ("essai.log.2", "essai.log.1", "essai.log")
        for line in logged_lines(tmp_path / name)
    ]
    assert kept == list(range(kept[0], 400)) and kept[0] > 0


def test_an_uncaught_exception_is_logged_with_its_traceback(tmp_path):
    done = run_logging(tmp_path, "raise RuntimeError('panne simulée')\n", LOG_FORMAT="json")
    assert done.returncode == 1
    record = json.loads(logged_lines(tmp_path / "essai.log")[0])
    assert record["level"] == "critical" and "RuntimeError: panne simulée" in record["exception"]


def test_without_log_dir_the_lines_go_to_standard_output():
    """The production mode: nothing written to disk, the supervisor collects stdout."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import logging\nfrom bot import logs\nlogs.configure('essai')\n"
            "logging.getLogger('bot.essai').warning('attention')\n",
        ],
        cwd=REPO_ROOT,
        env={k: v for k, v in os.environ.items() if k != "LOG_DIR"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert TEXT_LINE.match(done.stdout) and "WARNING essai bot.essai: attention" in done.stdout


def test_the_production_entry_point_logs_timestamped_lines_to_stdout():
    """`python -m bot.production` logs its own lines to stdout; its checks stop it here (no
    Redis on a closed port) before anything is started."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOG_", "BOT_", "REDIS"))}
    env.update(
        {
            "LOG_FORMAT": "json",
            "REDIS_URL": f"redis://127.0.0.1:{free_port()}/1",
            "BOT_REPLICAS": "1",
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "bot.production"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1 and "Redis ne répond pas" in done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    assert any("BOT_VAULT_KEY not set" in r["message"] for r in records)
    assert {r["service"] for r in records} == {"production"}


@pytest.mark.live
def test_the_live_assistant_logs_timestamped_lines(live_bot):
    """The whole assistant as the tests start it: each process's log, Rasa's included, is
    timestamped and names its process (tests/test_chores_live.py searches the same files for
    personal data)."""
    live_bot.chat("bonjour", "logs-check")
    for name in ("portal", "actions", "rasa", "gateway"):
        assert_text_log(live_bot.logs / f"{name}.log", name)
    assert "rasa.core" in (live_bot.logs / "rasa.log").read_text()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LOG_FORMAT", "xml"),
        ("LOG_LEVEL", "bavard"),
        ("LOG_LEVEL", "info"),
        ("LOG_MAX_BYTES", "10 Mo"),
    ],
)
def test_a_logging_setting_we_cannot_use_gets_a_french_sentence(tmp_path, variable, value):
    done = run_logging(
        tmp_path, "logging.getLogger('bot.essai').info('jamais')\n", **{variable: value}
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert f"Journalisation impossible : {variable} vaut « {value} »" in done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written
    # The start-up checks say it before anything starts.
    found = startup_checks.problems("local", {variable: value})
    assert len(found) == 1 and found[0].startswith(f"{variable} vaut")


@pytest.mark.live
def test_the_rasa_server_logs_json_lines_too(stack):
    """Rasa reads our configuration from --logging-config-file, then installs its own console
    handler; the channel puts ours back: every line of rasa.log is still one JSON object."""
    from bot.training import ensure_model

    local = stack(ensure_model(), LOG_FORMAT="json")
    local.start_process("rasa")
    assert local.say("bonjour")  # a turn, logged while the server runs
    local.stop()
    records = [json.loads(line) for line in logged_lines(local.logs / "rasa.log")]
    assert {r["service"] for r in records} == {"rasa"}
    assert any(r["logger"].startswith("rasa.") for r in records)
    assert all(r["level"] and isinstance(r["message"], str) for r in records)
