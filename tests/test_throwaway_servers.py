"""The test command needs no server running beforehand: scripts/servers.sh starts a throwaway
PostgreSQL cluster and Redis server when none answers, and the suite's fixtures work on them.

Each test starts its own with the same shell functions scripts/test uses (TEST_SERVERS=throwaway
skips the machine's servers), so it proves them even on a machine that runs its own."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import redis
from sqlalchemy import create_engine, text

from bot.config import REPO_ROOT
from tests.conftest import POSTGRES_ADMIN_URL, REDIS_TEST_URL, throwaway_postgres

pytestmark = pytest.mark.skipif(
    not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")) or not shutil.which("redis-server"),
    reason="PostgreSQL (initdb) or redis-server is not installed: scripts/test installs them",
)
# The outer run's servers must not leak into the throwaway ones' checks.
CLEAN_ENV = {
    k: v for k, v in os.environ.items() if k not in {"TEST_POSTGRES_URL", "TEST_REDIS_URL"}
}


def shell(script: str, *args: str) -> subprocess.CompletedProcess:
    """`script` in bash with scripts/lib.sh and scripts/servers.sh sourced."""
    return subprocess.run(
        ["bash", "-c", f"source scripts/lib.sh; source scripts/servers.sh; {script}", "_", *args],
        cwd=REPO_ROOT,
        env={**CLEAN_ENV, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def listening(url: str) -> bool:
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


# What the suite's modules read from the environment scripts/test exported.
PROBE = (
    "import redis; from tests.conftest import POSTGRES_ADMIN_URL, redis_url; "
    "r = redis.Redis.from_url(redis_url(5)); r.set('vote', 'Créteil'); "
    "print('admin', POSTGRES_ADMIN_URL, 'redis', redis_url(5), r.get('vote').decode())"
)


def test_the_suite_runs_on_throwaway_servers_and_they_are_gone_afterwards():
    """What scripts/test does on a machine without servers: start, run tests, stop."""
    run = shell(
        """
        TEST_SERVERS=throwaway ensure_test_servers
        trap stop_test_servers EXIT
        echo "dir=$TEST_SERVERS_DIR postgres=$TEST_POSTGRES_URL redis=$TEST_REDIS_URL"
        "$PY" -m pytest -q -p no:cacheprovider tests/test_postgresql.py
        "$PY" -c "$1"
        """,
        PROBE,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    said = dict(part.split("=", 1) for part in run.stdout.splitlines()[0].split())
    assert "PostgreSQL : jetable" in run.stderr and "Redis : jetable" in run.stderr
    assert said["postgres"] != POSTGRES_ADMIN_URL and said["redis"] != REDIS_TEST_URL
    assert "1 passed" in run.stdout  # the knowledge base on the throwaway cluster
    assert f"admin {said['postgres']} redis {said['redis']}/5 Créteil" in run.stdout
    assert not Path(said["dir"]).exists()
    assert not listening(said["postgres"]) and not listening(said["redis"])


def test_the_throwaway_database_fixture_round_trips_a_table_on_a_throwaway_cluster():
    folder = Path(tempfile.mkdtemp(prefix="throwaway-test-"))
    folder.chmod(0o711)  # the postgres user must reach its cluster's folder
    try:
        started = shell('throwaway_postgres_start "$1"', str(folder / "postgres"))
        assert started.returncode == 0, started.stderr
        admin_url = started.stdout.strip()
        with throwaway_postgres("roundtrip", admin_url) as url:
            engine = create_engine(url, future=True)
            with engine.begin() as connection:
                connection.execute(text("CREATE TABLE academie (nom text PRIMARY KEY)"))
                connection.execute(text("INSERT INTO academie VALUES ('Créteil'), ('Lyon')"))
            with engine.connect() as connection:
                names = connection.execute(text("SELECT nom FROM academie ORDER BY nom"))
                assert names.scalars().all() == ["Créteil", "Lyon"]
            engine.dispose()
        admin = create_engine(admin_url, future=True)
        with admin.connect() as connection:
            databases = connection.execute(text("SELECT datname FROM pg_database")).scalars()
            assert not [name for name in databases if name.startswith("roundtrip_")]
        admin.dispose()
    finally:
        shell('throwaway_postgres_stop "$1"', str(folder / "postgres"))
        shutil.rmtree(folder, ignore_errors=True)
    assert not listening(admin_url)


def test_a_throwaway_redis_answers_and_stops():
    folder = Path(tempfile.mkdtemp(prefix="throwaway-test-"))
    try:
        started = shell('throwaway_redis_start "$1"', str(folder))
        assert started.returncode == 0, started.stderr
        url = started.stdout.strip()
        client = redis.Redis.from_url(f"{url}/3")
        client.set("scrutin", "CTM")
        assert client.get("scrutin") == b"CTM"
        client.close()
    finally:
        shell('throwaway_redis_stop "$1"', str(folder))
        shutil.rmtree(folder, ignore_errors=True)


def test_servers_named_by_the_caller_are_used_as_they_are():
    run = shell(
        'TEST_POSTGRES_URL="$1" TEST_REDIS_URL="$2" ensure_test_servers; '
        'echo "[$TEST_SERVERS_DIR]"',
        POSTGRES_ADMIN_URL,
        REDIS_TEST_URL,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"  # nothing started
    assert "PostgreSQL : TEST_POSTGRES_URL" in run.stderr and "Redis : TEST_REDIS_URL" in run.stderr
