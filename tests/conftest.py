"""Shared fixtures: a real SQLite knowledge database, and live Rasa + action servers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bot.config import REPO_ROOT
from bot.knowledge import Knowledge, load_kb, make_engine
from bot.local_stack import LocalStack
from bot.training import ensure_model

KB = REPO_ROOT / "kb" / "faq_fr.md"
# The local PostgreSQL server (these machines run one; a test that needs it fails without it).
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@contextmanager
def throwaway_postgres(prefix: str) -> Iterator[str]:
    """The URL of a new database on the local PostgreSQL server, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", future=True)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture()
def postgres_url() -> Iterator[str]:
    """A throw-away database on the local PostgreSQL server."""
    with throwaway_postgres("test") as url:
        yield url


@pytest.fixture()
def knowledge(tmp_path: Path) -> Knowledge:
    """The real knowledge base, loaded into a fresh SQLite file."""
    engine = make_engine(f"sqlite:///{tmp_path / 'kb.db'}")
    load_kb(engine, KB)
    return Knowledge(engine)


@pytest.fixture(scope="session")
def live_bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The whole assistant on loopback (portal, actions, Rasa with a SQLite tracker store, gateway),
    the clock pinned during the vote (30 Nov 2018, noon)."""
    workdir = tmp_path_factory.mktemp("live")
    bot = LocalStack(
        workdir,
        ensure_model(),
        {"BOT_NOW": "2018-11-30T12:00"},
        tracker_db=True,
    )
    try:
        yield bot.start()
    finally:
        bot.stop()


def texts(messages: list[dict]) -> str:
    """Everything the bot said in one reply, as one string."""
    return "\n".join(m.get("text", "") for m in messages)


def buttons(messages: list[dict]) -> list[dict]:
    return [b for m in messages for b in m.get("buttons", [])]
