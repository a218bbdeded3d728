"""The agents' copilot suggests what the assistant would answer, from the knowledge base, without
touching the conversation it is asked about."""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import time
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from bot.actions import ActionAnswerFaq, ActionHandleInform, ActionWebmail, ActionWhoVotes
from bot.config import REPO_ROOT
from bot.knowledge import Knowledge
from bot.knowledge.kb_file import read_kb
from bot.knowledge.matching import EntityMatcher
from bot.support import copilot as copilot_module
from bot.support.copilot import Copilot, NluUnavailable, Suggestions, rasa_parser
from tests.actions_helpers import run, said, tracker
from tests.conftest import KB, texts
from tests.test_actions import FAQ_INTENTS
from tests.test_kb_change import knowledge_from

MATCHER = EntityMatcher.from_kb(read_kb(KB))


class FakeNlu:
    """Answers like `/webhooks/gateway/parse`: the intents given for a text, the entities the
    knowledge-base extractor finds in it; remembers what it was asked."""

    def __init__(self, intents: dict[str, list[tuple[str, float]]] | None = None) -> None:
        self.intents = intents or {}
        self.asked: list[str] = []

    async def __call__(self, text: str) -> dict[str, Any]:
        self.asked.append(text)
        ranking = self.intents.get(text, [("nlu_fallback", 0.5), ("out_of_scope", 0.3)])
        return {
            "intent": {"name": ranking[0][0], "confidence": ranking[0][1]},
            "intent_ranking": [{"name": n, "confidence": c} for n, c in ranking],
            "entities": [
                {"entity": m.entity, "value": m.value, "start": m.start, "end": m.end}
                for m in MATCHER.find(text)
            ],
        }


async def no_nlu(text: str) -> dict[str, Any]:
    raise NluUnavailable("connection refused")


def suggest(knowledge: Knowledge, text: str, *ranking: tuple[str, float]) -> Suggestions:
    nlu = FakeNlu({text: list(ranking)} if ranking else {})
    return asyncio.run(Copilot(knowledge, nlu).suggest(text))


@pytest.fixture(autouse=True)
def during_the_vote(monkeypatch):
    monkeypatch.setenv("BOT_NOW", "2018-11-30T12:00")


def test_the_top_suggestion_is_the_assistants_answer_with_its_section(knowledge):
    result = suggest(
        knowledge, "c kan le vote", ("voting_dates", 0.97), ("how_to_vote", 0.02), ("greet", 0.01)
    )
    top = result.suggestions[0]
    assert (top.key, top.kind, top.confidence) == ("voting_dates", "intent", 0.97)
    assert top.source == "Dates du vote"
    assert top.text == said(run(ActionAnswerFaq(knowledge), tracker("voting_dates"))[0])
    assert "29 novembre 2018 à 10h" in top.text and "ouvert en ce moment" in top.text


@pytest.mark.parametrize("intent", FAQ_INTENTS)
def test_every_faq_suggestion_reads_exactly_like_the_assistant(knowledge, intent):
    result = suggest(knowledge, "une question", (intent, 0.9))
    assert result.suggestions[0].key == intent
    assert result.suggestions[0].text == said(run(ActionAnswerFaq(knowledge), tracker(intent))[0])


# The action that answers each intent whose answer depends on a name.
ACTION_OF = {
    "webmail_access": ActionWebmail,
    "who_votes_where": ActionWhoVotes,
    "what_is_scrutin": ActionAnswerFaq,
}


@pytest.mark.parametrize(
    ("text", "intent", "entities"),
    [
        ("webmail versaille", "webmail_access", {"academie": "Versailles"}),
        ("je bosse dans le 93 ma messagerie", "webmail_access", {"academie": "Créteil"}),
        ("webmail", "webmail_access", {}),
        ("je suis AESH je vote pour quoi", "who_votes_where", {"categorie": "AESH-AED"}),
        ("psy scolaire je vote ou", "who_votes_where", {"categorie": "PsyEN"}),
        ("qui vote a la CCSA", "who_votes_where", {"scrutin": "CCSA"}),
        ("je vote a quoi", "who_votes_where", {}),
        ("c koi la CAPN", "what_is_scrutin", {"scrutin": "CAPN"}),
    ],
)
def test_answers_about_a_name_read_exactly_like_the_assistant(knowledge, text, intent, entities):
    assert {m.entity: m.value for m in MATCHER.find(text)} == entities
    state = tracker(intent, text, entities=entities)
    expected = said(run(ACTION_OF[intent](knowledge), state)[0])
    assert suggest(knowledge, text, (intent, 0.95)).suggestions[0].text == expected


def test_alternatives_from_the_nlu_and_the_search_are_merged_each_topic_once(knowledge):
    text = "mot de passe electeur oublie"
    result = suggest(
        knowledge, text, ("lost_voter_password", 0.7), ("create_password", 0.2), ("greet", 0.1)
    )
    keys = [s.key for s in result.suggestions]
    assert len(keys) == 3 == len(set(keys))
    assert keys[:1] == ["lost_voter_password"]
    hits = {h.key: h.score for h in knowledge.search_answers(text, 5)}
    for s in result.suggestions[1:]:
        expected = hits[s.key] if s.kind == "search" else {"create_password": 0.2}[s.key]
        assert s.confidence == pytest.approx(expected)
    assert [s.confidence for s in result.suggestions[1:]] == sorted(
        (s.confidence for s in result.suggestions[1:]), reverse=True
    )
    assert "search" in {s.kind for s in result.suggestions}


def test_conversation_intents_are_never_suggested(knowledge):
    for intent in ("greet", "thank", "out_of_scope", "inform", "ask_human", "nlu_fallback"):
        result = suggest(knowledge, "bonjour", (intent, 0.99), ("ask_human", 0.01))
        assert result.suggestions == ()
    # "Parler à une personne" is in the knowledge base, but an agent is that person.
    asked = suggest(knowledge, "je veux parler a une personne conseiller", ("ask_human", 0.99))
    assert "ask_human" not in [s.key for s in asked.suggestions]


def test_an_unsure_nlu_puts_the_closest_section_first(knowledge):
    text = "le mail pour creer le mot de passe je le recois pas"
    result = suggest(knowledge, text, ("nlu_fallback", 0.5), ("results", 0.06))
    assert result.suggestions[0].kind == "search"
    assert result.suggestions[0].key == knowledge.search_answers(text, 1)[0].key


def test_lookups_give_the_facts_about_every_name(knowledge):
    webmail = suggest(knowledge, "webmail versaille", ("webmail_access", 0.99)).lookups
    assert [(x.kind, x.title, x.source) for x in webmail] == [
        (
            "webmail",
            "Messagerie de l'académie : Versailles",
            "Messageries professionnelles des académies",
        )
    ]
    assert "messagerie.ac-versailles.fr" in webmail[0].text

    aesh = suggest(knowledge, "je suis AESH", ("inform", 0.99))
    assert "inform" not in [s.key for s in aesh.suggestions]
    assert [x.title for x in aesh.lookups] == ["Scrutins : AESH-AED"]
    state = tracker("inform", "je suis AESH", entities={"categorie": "AESH-AED"})
    assert aesh.lookups[0].text == said(run(ActionHandleInform(knowledge), state)[0])

    psy = suggest(knowledge, "psy scolaire et ac-lyon", ("who_votes_where", 0.9)).lookups
    assert [x.title for x in psy] == [
        "Scrutins : PsyEN détaché",
        "Scrutins : PsyEN intégré",
        "Messagerie de l'académie : Lyon",
    ]
    capn = suggest(knowledge, "la CAPN", ("what_is_scrutin", 0.9)).lookups
    assert [(x.kind, x.title) for x in capn] == [
        ("scrutin", "Qui vote : CAPN PE"),
        ("scrutin", "Qui vote : CAPN PsyEN"),
    ]


def test_without_the_nlu_the_search_and_the_names_still_answer(knowledge):
    copilot = Copilot(knowledge, no_nlu)
    dates = asyncio.run(copilot.suggest("quelles sont les dates du vote"))
    assert dates.nlu is False
    assert dates.suggestions[0].key == "voting_dates"
    assert dates.suggestions[0].kind == "search"
    versailles = asyncio.run(copilot.suggest("webmail versaille"))
    assert [x.title for x in versailles.lookups] == ["Messagerie de l'académie : Versailles"]
    assert versailles.as_json()["nlu"] is False


def test_personal_data_never_reaches_the_nlu(knowledge):
    nlu = FakeNlu()
    copilot = Copilot(knowledge, nlu)
    result = asyncio.run(copilot.suggest("identifiant perdu, numen 01E9501234ABC tel 0612345678"))
    assert nlu.asked == ["identifiant perdu, numen NUMEN_MASQUE tel TELEPHONE_MASQUE"]
    assert result.text == nlu.asked[0]
    assert "01E9501234ABC" not in str(result.as_json())
    password = asyncio.run(copilot.suggest("mon mot de passe est Secret2018x"))
    assert password.as_json() == {"text": "", "nlu": True, "suggestions": [], "lookups": []}
    assert len(nlu.asked) == 1


def test_as_json_is_what_the_console_shows(knowledge):
    data = suggest(knowledge, "webmail versaille", ("webmail_access", 0.987654)).as_json()
    assert set(data) == {"text", "nlu", "suggestions", "lookups"}
    first = data["suggestions"][0]
    assert set(first) == {"text", "confidence", "source", "key", "kind"}
    assert first["confidence"] == 0.988
    assert set(data["lookups"][0]) == {"title", "text", "source", "kind"}


def test_a_date_edited_in_the_kb_changes_the_suggestion(tmp_path):
    original = KB.read_text(encoding="utf-8")
    edited = original.replace("| 2018-11-29 10:00 |", "| 2018-11-28 09:30 |").replace(
        "| messagerie.ac-versailles.fr |", "| webmail.ac-versailles.fr |"
    )
    assert edited.count("2018-11-28 09:30") == 1 and "webmail.ac-versailles.fr" in edited
    (tmp_path / "before").mkdir()
    (tmp_path / "after").mkdir()
    before = knowledge_from(original, tmp_path / "before")
    after = knowledge_from(edited, tmp_path / "after")

    def vote_and_webmail(knowledge: Knowledge) -> str:
        dates = suggest(knowledge, "c kan le vote", ("voting_dates", 0.99))
        webmail = suggest(knowledge, "webmail versaille", ("webmail_access", 0.99))
        return dates.suggestions[0].text + webmail.suggestions[0].text + webmail.lookups[0].text

    assert "29 novembre 2018 à 10h" in vote_and_webmail(before)
    changed = vote_and_webmail(after)
    assert "28 novembre 2018 à 9h30" in changed and "29 novembre 2018 à 10h" not in changed
    assert changed.count("webmail.ac-versailles.fr") == 2
    assert "messagerie.ac-versailles.fr" not in changed


# --- rasa_parser, against an HTTP server on loopback --------------------------------------------


async def _with_server(handler, call):
    app = web.Application()
    app.router.add_post("/webhooks/gateway/parse", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession() as http:
            return await call(rasa_parser(http, f"http://127.0.0.1:{port}/"))
    finally:
        await runner.cleanup()


def test_rasa_parser_posts_the_text_with_the_channel_token(monkeypatch):
    monkeypatch.setenv("GATEWAY_RASA_TOKEN", "secret-token")
    seen = {}

    async def handler(request: web.Request) -> web.Response:
        seen["auth"] = request.headers.get("Authorization")
        seen["body"] = await request.json()
        return web.json_response({"intent": {"name": "greet"}, "intent_ranking": []})

    parsed = asyncio.run(_with_server(handler, lambda parse: parse("bonjour")))
    assert parsed["intent"]["name"] == "greet"
    assert seen == {"auth": "Bearer secret-token", "body": {"text": "bonjour"}}


@pytest.mark.parametrize("failure", ["error", "slow", "not json"])
def test_rasa_parser_failures_are_nlu_unavailable(monkeypatch, failure):
    monkeypatch.setattr(copilot_module, "PARSE_TIMEOUT_SECONDS", 0.2)

    async def handler(request: web.Request) -> web.Response:
        if failure == "slow":
            await asyncio.sleep(1)
        if failure == "not json":
            return web.Response(text="<html>")
        return web.json_response({"error": "assistant failure"}, status=500)

    async def call(parse):
        with pytest.raises(NluUnavailable):
            await parse("bonjour")

    asyncio.run(_with_server(handler, call))


def test_an_unreachable_rasa_server_leaves_the_search(knowledge):
    async def call() -> Suggestions:
        async with aiohttp.ClientSession() as http:
            parse = rasa_parser(http, "http://127.0.0.1:9")  # discard port: refused
            return await Copilot(knowledge, parse).suggest("c kan le vote")

    result = asyncio.run(call())
    assert result.nlu is False
    assert "voting_dates" in [s.key for s in result.suggestions]


# --- live: the real Rasa server ------------------------------------------------------------------


def _copilot_call(live_bot, knowledge: Knowledge, questions: list[str]) -> list[Suggestions]:
    async def call() -> list[Suggestions]:
        async with aiohttp.ClientSession() as http:
            copilot = Copilot(knowledge, rasa_parser(http, live_bot.url))
            return [await copilot.suggest(q) for q in questions]

    return asyncio.run(call())


def _tracker_events(live_bot) -> list[tuple]:
    """Every event of every conversation in Rasa's tracker store (a SQLite file)."""
    with sqlite3.connect(live_bot.tracker_db) as db:
        return db.execute(
            "SELECT sender_id, type_name, intent_name, action_name, data FROM events ORDER BY id"
        ).fetchall()


@pytest.mark.live
def test_live_suggestions_for_dates_webmail_and_eligibility_questions(live_bot, knowledge):
    dates, webmail, aesh = _copilot_call(
        live_bot,
        knowledge,
        ["c kan le vote", "webmail versaille", "je suis AESH je vote pour quoi"],
    )
    assert dates.nlu is True
    assert (dates.suggestions[0].key, dates.suggestions[0].source) == (
        "voting_dates",
        "Dates du vote",
    )
    assert dates.suggestions[0].kind == "intent" and dates.suggestions[0].confidence > 0.5
    assert knowledge.answer("voting_dates").text in dates.suggestions[0].text
    assert any(
        x.kind == "webmail" and "messagerie.ac-versailles.fr" in x.text for x in webmail.lookups
    )
    assert ("eligibility", "Scrutins : AESH-AED") in [(x.kind, x.title) for x in aesh.lookups]
    assert "**3 scrutins**" in aesh.lookups[0].text


@pytest.mark.live
def test_live_asking_for_a_suggestion_leaves_the_conversation_unchanged(live_bot, knowledge):
    sender = "copilot-watched"
    live_bot.say("bonjour", sender)
    before = _tracker_events(live_bot)
    assert [e for e in before if e[0] == sender]
    aesh, versailles = _copilot_call(live_bot, knowledge, ["je suis AESH", "webmail versaille"])
    assert aesh.lookups and versailles.lookups
    assert _tracker_events(live_bot) == before  # no conversation changed, none started
    # Had the copilot's "je suis AESH" reached this conversation, the category would be
    # remembered and answered here; the assistant asks for it instead.
    reply = texts(live_bot.say("je vote a quels scrutins ?", sender))
    assert "Quelle est votre situation ?" in reply
    assert "vous votez à" not in reply


def heldout_questions(every: int) -> list[str]:
    """Every `every`-th question of the held-out NLU set (written apart from the training data)."""
    blocks = yaml.safe_load((REPO_ROOT / "tests" / "nlu" / "heldout.yml").read_text())["nlu"]
    lines = [line[2:].strip() for b in blocks for line in b["examples"].splitlines() if line]
    return lines[::every]


@pytest.mark.live
def test_live_suggestions_come_well_within_a_second(live_bot, knowledge):
    questions = heldout_questions(7)
    assert len(questions) >= 50

    async def durations() -> list[float]:
        measured = []
        async with aiohttp.ClientSession() as http:
            copilot = Copilot(knowledge, rasa_parser(http, live_bot.url))
            await copilot.suggest("bonjour")  # the first search builds its index
            for question in questions:
                started = time.perf_counter()
                assert (await copilot.suggest(question)).nlu is True
                measured.append(time.perf_counter() - started)
        return measured

    measured = asyncio.run(durations())
    print(f"copilot: median {statistics.median(measured) * 1000:.0f} ms over {len(measured)}")
    assert statistics.median(measured) < 0.5
