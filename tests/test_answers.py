"""`bot.answers.reply`: one decision for the assistant's actions and the agents' copilot."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from bot.answers import Reply, reply
from bot.answers.handoff import REASON_ASKED, payload, reason_of
from bot.gateway.relay import bot_message
from bot.knowledge import Knowledge
from bot.support.copilot import Copilot

NOON = datetime(2018, 11, 30, 12, 0)


def entity(kind: str, value: str, role: str | None = None) -> dict:
    return {"entity": kind, "value": value, **({"role": role} if role else {})}


def test_a_named_academie_is_answered_and_remembered(knowledge: Knowledge):
    answer = reply(knowledge, "webmail_access", [entity("academie", "Lyon")], NOON)
    assert knowledge.academie("Lyon").webmail_host in answer.text
    assert answer.remembered == {"academie": "Lyon"} and answer.buttons == ()


def test_the_academie_of_before_is_not_the_one_asked_about(knowledge: Knowledge):
    entities = [entity("academie", "Lyon", role="avant"), entity("academie", "Créteil")]
    answer = reply(knowledge, "webmail_access", entities, NOON)
    assert knowledge.academie("Créteil").webmail_host in answer.text
    assert knowledge.academie("Lyon").webmail_host not in answer.text


def test_without_a_name_the_remembered_one_or_a_question_with_buttons(knowledge: Knowledge):
    remembered = reply(knowledge, "webmail_access", [], NOON, remembered={"academie": "Nice"})
    assert knowledge.academie("Nice").webmail_host in remembered.text
    asked = reply(knowledge, "webmail_access", [], NOON)
    assert asked.text.endswith("Quelle est votre académie ?")
    assert len(asked.buttons) == len(knowledge.academies()) and asked.remembered == {}


def test_a_colleagues_category_is_answered_about_them_and_not_remembered(knowledge: Knowledge):
    entities = [entity("categorie", "AESH-AED"), entity("situation", "tiers")]
    answer = reply(knowledge, "who_votes_where", entities, NOON)
    assert "les personnels de cette catégorie votent" in answer.text
    assert answer.remembered == {}
    mine = reply(knowledge, "who_votes_where", [entity("categorie", "AESH-AED")], NOON)
    assert "vous votez" in mine.text and mine.remembered == {"categorie": "AESH-AED"}


def test_an_unknown_category_is_not_understood_by_both_the_assistant_and_the_copilot(
    knowledge: Knowledge,
):
    answer = reply(knowledge, "who_votes_where", [entity("categorie", "astronaute")], NOON)
    assert answer == Reply(None, response="utter_default")

    async def parse(text: str) -> dict:
        return {
            "intent": {"name": "who_votes_where", "confidence": 0.9},
            "intent_ranking": [{"name": "who_votes_where", "confidence": 0.9}],
            "entities": [entity("categorie", "astronaute")],
        }

    suggested = asyncio.run(Copilot(knowledge, parse).suggest("je suis astronaute"))
    assert "who_votes_where" not in [s.key for s in suggested.suggestions]


@pytest.mark.parametrize("intent", ["voting_dates", "results"])
def test_a_faq_answer_says_where_the_calendar_stands(knowledge: Knowledge, intent: str):
    answer = reply(knowledge, intent, [], NOON)
    assert answer.text.startswith(knowledge.answer(intent).text)


def test_the_handoff_payload_is_read_back_by_the_relay():
    assert reason_of(payload(REASON_ASKED)) == REASON_ASKED
    assert bot_message({"custom": payload(REASON_ASKED)}) == {"handoff": REASON_ASKED}
    assert reason_of({"handoff": 3}) is None and reason_of("handoff") is None
