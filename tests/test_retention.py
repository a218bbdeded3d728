"""The retention job, on real SQLite and PostgreSQL: old conversations, turns, closed handoffs,
old audit entries, expired console sessions and vault entries, and old Rasa tracker events go;
recent ones and conversations waiting for an agent stay; a dry run deletes nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.config import REPO_ROOT
from bot.db import create_schema, make_engine
from bot.personal_data.vault import VaultEntry
from bot.support import models
from bot.support.accounts import Accounts
from bot.support.retention import RetentionPolicy, purge_support, purge_tracker
from tests.conftest import throwaway_postgres

NOW = datetime(2026, 11, 28, 12, 0)
OLD = NOW - timedelta(days=120)
RECENT = NOW - timedelta(days=3)
PASSWORD = "une phrase de passe solide"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'bot.db'}"
        return
    with throwaway_postgres("retention_test") as url:
        yield url


def conversation(session: Session, cid: str, last_at: datetime, turns: list[datetime]) -> None:
    session.add(models.Conversation(id=cid, channel="web", started_at=turns[0], last_at=last_at))
    session.flush()
    for at in turns:
        session.add(models.Turn(conversation_id=cid, at=at, role="user", text=f"{cid} {at:%j}"))


def populate(engine: Engine) -> int:
    """Conversations of every age and state; returns the agent's id."""
    create_schema(engine)
    Accounts(engine).create_agent("alice", "Alice Martin", PASSWORD, "agent")
    with Session(engine, future=True) as session, session.begin():
        agent = session.scalar(select(models.Agent.id))
        conversation(session, "web-old", OLD, [OLD - timedelta(days=1), OLD])
        conversation(session, "web-recent", RECENT, [RECENT])
        conversation(session, "web-long", RECENT, [OLD, RECENT])  # one old turn, one recent
        conversation(session, "web-waiting", OLD, [OLD])  # an agent has not answered yet
        session.add_all(
            [
                models.Handoff(conversation_id="web-old", reason="demande", channel="web",
                               created_at=OLD, closed_at=OLD),
                models.Handoff(conversation_id="web-long", reason="demande", channel="web",
                               created_at=OLD, closed_at=OLD + timedelta(hours=1)),
                models.Handoff(conversation_id="web-recent", reason="demande", channel="web",
                               created_at=RECENT, closed_at=RECENT),
                models.Handoff(conversation_id="web-waiting", reason="demande", channel="web",
                               created_at=OLD),
                models.AuditEntry(at=NOW - timedelta(days=400), agent_id=agent, action="read"),
                models.AuditEntry(at=OLD, agent_id=agent, action="read"),
                models.AgentSession(token_hash="a" * 64, agent_id=agent, csrf_token="x",
                                    expires_at=NOW - timedelta(hours=1)),
                models.AgentSession(token_hash="b" * 64, agent_id=agent, csrf_token="y",
                                    expires_at=NOW + timedelta(hours=1)),
                VaultEntry(sender_hash="h1", kind="numen", ciphertext=b"x",
                           expires_at=time.time() - 60),
                VaultEntry(sender_hash="h2", kind="numen", ciphertext=b"x",
                           expires_at=time.time() + 600),
            ]
        )  # fmt: skip
    return agent


def rows(engine: Engine, column) -> list:
    with Session(engine, future=True) as session:
        return sorted(session.scalars(select(column)))


def count(engine: Engine, table) -> int:
    with Session(engine, future=True) as session:
        return session.scalar(select(func.count()).select_from(table))


def test_old_conversations_and_expired_secrets_go_recent_and_waiting_ones_stay(database_url):
    engine = make_engine(database_url)
    populate(engine)
    policy = RetentionPolicy(days=90, audit_days=365)

    before = {t: count(engine, t) for t in models.Base.metadata.sorted_tables}
    counted = purge_support(engine, policy, NOW, dry_run=True)
    assert {t: count(engine, t) for t in models.Base.metadata.sorted_tables} == before
    assert counted == {
        "tours de conversation": 3,  # web-old's two, web-long's old one
        "demandes de conseiller closes": 2,
        "conversations": 1,
        "journal d'audit": 1,
        "sessions de la console expirées": 1,
        "coffre (valeurs expirées)": 1,
    }

    assert purge_support(engine, policy, NOW) == counted
    assert rows(engine, models.Conversation.id) == ["web-long", "web-recent", "web-waiting"]
    assert rows(engine, models.Turn.text) == [
        f"web-long {RECENT:%j}",
        f"web-recent {RECENT:%j}",
        f"web-waiting {OLD:%j}",  # its handoff is open: an agent may be reading it
    ]
    assert rows(engine, models.Handoff.conversation_id) == ["web-recent", "web-waiting"]
    assert rows(engine, models.AuditEntry.at) == [OLD]
    assert rows(engine, models.AgentSession.token_hash) == ["b" * 64]
    assert rows(engine, VaultEntry.sender_hash) == ["h2"]
    # Run again: nothing more to purge.
    assert set(purge_support(engine, policy, NOW).values()) == {0}
    engine.dispose()


def tracker_events(engine: Engine) -> Table:
    """The table of Rasa's SQLTrackerStore (rasa/core/tracker_store.py), as Rasa creates it."""
    metadata = MetaData()
    events = Table(
        "events",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("sender_id", String(255), nullable=False, index=True),
        Column("type_name", String(255), nullable=False),
        Column("timestamp", Float),
        Column("intent_name", String(255)),
        Column("action_name", String(255)),
        Column("data", Text),
    )
    metadata.create_all(engine)
    return events


def test_old_rasa_tracker_events_go_but_the_current_session_stays(database_url):
    engine = make_engine(database_url)
    events = tracker_events(engine)
    old, recent = OLD.timestamp(), RECENT.timestamp()
    timeline = [
        ("idle", "session_started", old), ("idle", "user", old),
        ("active", "session_started", old), ("active", "user", old),
        ("active", "session_started", recent), ("active", "user", recent),
        ("returning", "session_started", old), ("returning", "user", recent),
    ]  # fmt: skip
    with engine.begin() as connection:
        for sender, kind, at in timeline:
            connection.execute(
                insert(events).values(sender_id=sender, type_name=kind, timestamp=at, data="{}")
            )
    policy = RetentionPolicy(days=90)
    counted = purge_tracker(engine, policy, NOW, dry_run=True)
    assert counted == {"événements du suivi Rasa": 4} and count(engine, events) == 8
    assert purge_tracker(engine, policy, NOW) == counted
    with engine.connect() as connection:
        kept = connection.execute(select(events.c.sender_id, events.c.type_name)).all()
    assert sorted(kept) == [
        ("active", "session_started"),
        ("active", "user"),
        # Its session started long ago but is still going: Rasa reads it back whole.
        ("returning", "session_started"),
        ("returning", "user"),
    ]
    engine.dispose()


def test_the_policy_refuses_nonsense_in_french():
    with pytest.raises(ValueError, match="au moins 1 jour"):
        RetentionPolicy(days=0)
    with pytest.raises(ValueError, match="audit"):
        RetentionPolicy(days=90, audit_days=30)


def test_the_command_purges_both_databases_and_says_what_it_did(tmp_path):
    bot_url, tracker_url = f"sqlite:///{tmp_path / 'bot.db'}", f"sqlite:///{tmp_path / 'rasa.db'}"
    engine, tracker = make_engine(bot_url), make_engine(tracker_url)
    populate(engine)
    events = tracker_events(tracker)
    with tracker.begin() as connection:
        connection.execute(insert(events).values(sender_id="s", type_name="user", timestamp=1.0))
    env = {**os.environ, "BOT_DATABASE_URL": bot_url, "TRACKER_DATABASE_URL": tracker_url}
    env["BOT_RETENTION_DAYS"] = "30"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "bot.support.retention", *args],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    dry = run("--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "conversations 30 jours" in dry.stdout and "simulation" in dry.stdout
    assert "suivi Rasa : 1 événements du suivi Rasa à supprimer" in dry.stdout
    assert count(tracker, events) == 1
    done = run()
    assert done.returncode == 0, done.stderr
    assert "supprimé(e)s" in done.stdout
    assert count(tracker, events) == 0
    # The real clock: web-old and web-long's old turn are months old, web-recent days old.
    assert "web-old" not in rows(engine, models.Conversation.id)
    refused = run("--days", "0")
    assert refused.returncode == 2 and "au moins 1 jour" in refused.stderr
    engine.dispose()
    tracker.dispose()
