"""The knowledge database works on PostgreSQL too (any SQLAlchemy URL, via BOT_DATABASE_URL)."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, text

from bot.actions import ActionAnswerFaq, ActionWhoVotes
from bot.knowledge import Knowledge, load_kb, make_engine
from tests.actions_helpers import run, said, tracker
from tests.conftest import KB

ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture()
def postgres_url():
    """A throw-away database on the local PostgreSQL server."""
    name = f"kb_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT", future=True)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # any failure here means "no server on this machine"
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable at {ADMIN_URL}: {error}")
    yield ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_the_knowledge_base_loads_and_answers_from_postgresql(postgres_url):
    engine = make_engine(postgres_url)
    assert load_kb(engine, KB) is True
    assert load_kb(engine, KB) is False
    knowledge = Knowledge(engine)
    state = tracker("who_votes_where", entities={"categorie": "PsyEN détaché"})
    assert "**6 scrutins**" in said(run(ActionWhoVotes(knowledge), state)[0])
    assert "29 novembre 2018 à 10h" in said(
        run(ActionAnswerFaq(knowledge), tracker("voting_dates"))[0]
    )
    engine.dispose()
