"""Shared fixtures: a real SQLite knowledge database, and live Rasa + action servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import REPO_ROOT
from bot.knowledge import Knowledge, load_kb, make_engine
from bot.local_stack import LocalStack
from bot.training import ensure_model

KB = REPO_ROOT / "kb" / "faq_fr.md"


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
