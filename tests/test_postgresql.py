"""The knowledge database works on PostgreSQL too (any SQLAlchemy URL, via BOT_DATABASE_URL)."""

from __future__ import annotations

from bot.actions import ActionAnswerFaq, ActionWhoVotes
from bot.db import create_schema
from bot.knowledge import Knowledge, load_kb
from tests.actions_helpers import run, said, tracker
from tests.conftest import KB


def test_the_knowledge_base_loads_and_answers_from_postgresql(postgres_url):
    engine = create_schema(postgres_url)
    assert load_kb(engine, KB) is True
    assert load_kb(engine, KB) is False
    knowledge = Knowledge(engine)
    state = tracker("who_votes_where", entities={"categorie": "PsyEN détaché"})
    assert "**6 scrutins**" in said(run(ActionWhoVotes(knowledge), state)[0])
    assert "29 novembre 2018 à 10h" in said(
        run(ActionAnswerFaq(knowledge), tracker("voting_dates"))[0]
    )
    engine.dispose()
