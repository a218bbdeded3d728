"""Shared fixtures: a real SQLite knowledge database, and live Rasa + action servers."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, text

from bot.config import REPO_ROOT
from bot.db import create_schema
from bot.knowledge import Knowledge, load_kb
from bot.local_stack import LocalStack
from bot.training import ensure_model

KB = REPO_ROOT / "kb" / "faq_fr.md"
# The PostgreSQL and Redis servers of the tests: the machine's own by default; scripts/test
# starts throwaway ones (scripts/servers.sh) and sets these variables when none answers.
POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_TEST_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")


def redis_url(database: int) -> str:
    """The tests' Redis server, database number `database`."""
    url = urlsplit(REDIS_TEST_URL)
    return url._replace(path=f"/{database}").geturl()


@contextmanager
def throwaway_postgres(prefix: str, admin_url: str | None = None) -> Iterator[str]:
    """The URL of a new database on the tests' PostgreSQL server (or the one of `admin_url`),
    dropped afterwards."""
    admin_url = admin_url or POSTGRES_ADMIN_URL
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT", future=True)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.rsplit("/", 1)[0] + "/" + name
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
    engine = create_schema(f"sqlite:///{tmp_path / 'kb.db'}")
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
    # Gateways, channels and the copilot started in this process talk to that Rasa: they send
    # the token it expects (GATEWAY_RASA_TOKEN), as the stack's own gateway does.
    previous = os.environ.get("GATEWAY_RASA_TOKEN")
    os.environ["GATEWAY_RASA_TOKEN"] = bot.env["GATEWAY_RASA_TOKEN"]
    try:
        yield bot.start()
    finally:
        bot.stop()
        if previous is None:
            os.environ.pop("GATEWAY_RASA_TOKEN", None)
        else:
            os.environ["GATEWAY_RASA_TOKEN"] = previous


# A project small enough to train in seconds, for tests of the plumbing around a model (the
# training cache, progress lines), never of what the assistant understands.
TINY_CONFIG = """\
recipe: default.v1
language: fr
assistant_id: tiny
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
  - name: DIETClassifier
    epochs: 5
    number_of_transformer_layers: 0
    entity_recognition: false
policies:
  - name: RulePolicy
"""
TINY_DOMAIN = """\
version: "3.1"
intents: [bonjour, au_revoir]
responses:
  utter_bonjour:
    - text: "Bonjour !"
  utter_au_revoir:
    - text: "Au revoir !"
"""
TINY_DATA = """\
version: "3.1"
nlu:
  - intent: bonjour
    examples: |
      - bonjour
      - salut
      - coucou
  - intent: au_revoir
    examples: |
      - au revoir
      - à plus
      - bonne journée
rules:
  - rule: bonjour
    steps:
      - intent: bonjour
      - action: utter_bonjour
  - rule: au revoir
    steps:
      - intent: au_revoir
      - action: utter_au_revoir
"""


@pytest.fixture()
def tiny_project(tmp_path: Path) -> Path:
    """A Rasa project of two intents (about 15 s to train on 2 cores), in a temporary folder."""
    root = tmp_path / "tiny"
    (root / "data").mkdir(parents=True)
    (root / "config.yml").write_text(TINY_CONFIG)
    (root / "domain.yml").write_text(TINY_DOMAIN)
    (root / "data" / "tiny.yml").write_text(TINY_DATA)
    return root


def texts(messages: list[dict]) -> str:
    """Everything the bot said in one reply, as one string."""
    return "\n".join(m.get("text", "") for m in messages)


def buttons(messages: list[dict]) -> list[dict]:
    return [b for m in messages for b in m.get("buttons", [])]
