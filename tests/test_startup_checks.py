"""Production mode fails early: with PostgreSQL, Redis or the portal unreachable, the real entry
point (`python -m bot.production`) stops within seconds, before any training or replica, with
one French sentence naming the variable to fix; the local mode's checks likewise. The servers
that are up are the tests' own (tests/conftest.py); a closed port stands for the one that is
down."""

from __future__ import annotations

import gzip
import io
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from bot import startup_checks
from bot.config import REPO_ROOT
from bot.local_stack import free_port
from tests.conftest import POSTGRES_ADMIN_URL, redis_url

# Longest a failed start may take: each check gives up after 3 s, a closed port at once.
FAST_SECONDS = 15


def closed_port() -> int:
    return free_port()  # bound then released: nothing listens there


def postgres(database: str) -> str:
    return POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + database


def production_env(**overrides: str) -> dict[str, str]:
    """The environment of a production start where every service answers, but `overrides`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("BOT_", "PORTAL_", "REDIS_", "TRACKER_", "LOG_"))
    }
    env.update(
        {
            "BOT_DATABASE_URL": postgres("startup_checks_bot"),
            "TRACKER_DATABASE_URL": postgres("startup_checks_tracker"),
            "PORTAL_DATABASE_URL": postgres("startup_checks_portal"),
            "REDIS_URL": redis_url(7),
            "BOT_REPLICAS": "1",
            "RASA_TELEMETRY_ENABLED": "false",
        }
    )
    env.update(overrides)
    return env


def start_production(env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "bot.production"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,  # a broken check would go on to train: never wait for that
    )
    return done, time.monotonic() - started


def assert_failed_early(done: subprocess.CompletedProcess, seconds: float, *said: str) -> None:
    assert done.returncode == 1, done.stderr
    assert seconds < FAST_SECONDS, seconds
    problems = [line for line in done.stderr.splitlines() if "Démarrage impossible" in line]
    assert len(problems) == 1, done.stderr  # one sentence for the one service down
    for words in said:
        assert words in problems[0]
    # Nothing long began: no training, no replica, no « prêt ».
    assert "Entraînement" not in done.stderr and "Modèle à jour" not in done.stderr
    assert "Démarrage de" not in done.stderr and "prêt" not in done.stderr


def test_every_service_up_means_no_problem():
    """The checks do not cry wolf: with the tests' PostgreSQL and Redis, nothing is reported
    (the databases need not exist yet: the production start creates them)."""
    assert startup_checks.problems("production", production_env()) == []


def test_production_stops_at_once_when_postgresql_is_down():
    down = f"postgresql://postgres@127.0.0.1:{closed_port()}/assistant"
    done, seconds = start_production(production_env(BOT_DATABASE_URL=down))
    assert_failed_early(
        done, seconds, "PostgreSQL ne répond pas", "BOT_DATABASE_URL", "démarrez le serveur"
    )


def test_the_tracker_database_is_checked_too():
    down = f"postgresql://postgres@127.0.0.1:{closed_port()}/tracker"
    done, seconds = start_production(production_env(TRACKER_DATABASE_URL=down))
    assert_failed_early(done, seconds, "PostgreSQL ne répond pas", "TRACKER_DATABASE_URL")


def test_databases_on_one_server_that_is_down_make_one_sentence():
    server = f"postgresql://postgres@127.0.0.1:{closed_port()}"
    done, seconds = start_production(
        production_env(
            BOT_DATABASE_URL=f"{server}/a",
            TRACKER_DATABASE_URL=f"{server}/b",
            PORTAL_DATABASE_URL=f"{server}/c",
        )
    )
    assert_failed_early(
        done,
        seconds,
        "BOT_DATABASE_URL, TRACKER_DATABASE_URL, PORTAL_DATABASE_URL",
    )


def test_production_stops_at_once_when_redis_is_down():
    done, seconds = start_production(
        production_env(REDIS_URL=f"redis://127.0.0.1:{closed_port()}/1")
    )
    assert_failed_early(done, seconds, "Redis ne répond pas", "REDIS_URL", "démarrez le serveur")


def test_production_stops_at_once_when_the_portal_is_unreachable():
    done, seconds = start_production(
        production_env(PORTAL_URL=f"http://127.0.0.1:{closed_port()}", PORTAL_TOKEN="jeton")
    )
    assert_failed_early(done, seconds, "Le portail électoral ne répond pas", "PORTAL_URL")


def test_a_real_portal_without_its_token_is_refused():
    done, seconds = start_production(production_env(PORTAL_URL="http://127.0.0.1:9"))
    assert_failed_early(done, seconds, "PORTAL_TOKEN n'est pas défini")


def test_an_invalid_redis_address_gets_a_sentence_not_a_traceback():
    done, seconds = start_production(production_env(REDIS_URL="localhost:6379"))
    assert_failed_early(done, seconds, "REDIS_URL n'est pas une adresse Redis valide")
    assert "Traceback" not in done.stderr


def test_the_local_mode_checks_a_postgresql_database_and_a_real_portal():
    """scripts/run runs `python -m bot.startup_checks` before training: the same sentences."""
    env = production_env(
        BOT_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{closed_port()}/assistant",
        PORTAL_URL=f"http://127.0.0.1:{closed_port()}",
        PORTAL_TOKEN="jeton",
        REDIS_URL=f"redis://127.0.0.1:{closed_port()}/1",  # the local mode uses no Redis
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "bot.startup_checks"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert time.monotonic() - started < FAST_SECONDS
    assert done.returncode == 1
    assert "BOT_DATABASE_URL" in done.stderr and "PORTAL_URL" in done.stderr
    assert "Redis" not in done.stderr
    # Its default, a SQLite file, needs no server.
    sqlite = {**env, "BOT_DATABASE_URL": "sqlite:///var/bot.db"}
    sqlite.pop("PORTAL_URL")
    done = subprocess.run(
        [sys.executable, "-m", "bot.startup_checks"],
        cwd=REPO_ROOT,
        env=sqlite,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def small_model(path: Path) -> Path:
    """A gzip tar archive like Rasa's, with one small member."""
    with tarfile.open(path, "w:gz") as archive:
        data = b"metadata" * 5000
        member = tarfile.TarInfo("components/metadata.json")
        member.size = len(data)
        archive.addfile(member, io.BytesIO(data))
    return path


def test_a_damaged_model_is_reported_before_rasa_tries_to_load_it(tmp_path):
    good = small_model(tmp_path / "good.tar.gz")
    assert startup_checks.model_problem(good) is None
    assert startup_checks.model_problem(tmp_path / "missing.tar.gz") is None  # trained next
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    not_gzip = tmp_path / "not-gzip.tar.gz"
    not_gzip.write_bytes(b"<html>proxy error</html>")
    corrupt = tmp_path / "corrupt.tar.gz"
    corrupt.write_bytes(gzip.compress(b"this is no tar archive" * 100))
    for damaged in (truncated, not_gzip, corrupt):
        problem = startup_checks.model_problem(damaged)
        assert problem is not None, damaged
        assert "illisible" in problem and "supprimez ce fichier" in problem


@pytest.mark.parametrize("variable", ["BOT_DATABASE_URL", "TRACKER_DATABASE_URL"])
def test_an_invalid_database_address_gets_a_sentence(variable):
    found = startup_checks.problems("production", production_env(**{variable: "postgresql://:x"}))
    assert len(found) == 1 and variable in found[0] and "n'est pas une adresse" in found[0]
