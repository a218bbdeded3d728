"""Custom actions answer from the knowledge database (a real SQLite file)."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet

from bot.actions import (
    ActionAnswerFaq,
    ActionClarify,
    ActionHandleInform,
    ActionHelp,
    ActionOutOfScope,
    ActionWebmail,
    ActionWhoVotes,
)
from bot.actions.handoff import ActionRequestHuman
from bot.db import create_schema, make_engine
from bot.knowledge import Knowledge
from bot.knowledge.topics import faq_action_topics
from bot.personal_data.vault import Vault
from tests.actions_helpers import run, said, tracker
from tests.test_kb_file import SEED_SCRUTINS

# Every topic of kb/faq_fr.md that a rule or a story answers with action_answer_faq.
FAQ_INTENTS = faq_action_topics()


@pytest.mark.parametrize("intent", FAQ_INTENTS)
def test_every_faq_answer_is_complete_french_text(knowledge, intent):
    messages, _ = run(ActionAnswerFaq(knowledge), tracker(intent))
    text = said(messages)
    assert len(text) > 80
    assert "{" not in text and "}" not in text
    assert text == text.strip()


def test_the_password_rules_state_the_seed_limits(knowledge):
    text = said(run(ActionAnswerFaq(knowledge), tracker("password_rules"))[0])
    assert "entre 8 et 24 caractères" in text
    assert "une minuscule, une majuscule et un chiffre" in text


def test_lost_voter_id_explains_sms_three_requests_and_deadline(knowledge):
    text = said(run(ActionAnswerFaq(knowledge), tracker("lost_voter_id"))[0])
    assert "uniquement par SMS" in text
    assert "que 3 fois" in text
    assert "6 décembre 2018 à 17h" in text
    assert "NUMEN" in text and "service RH académique" in text


@pytest.mark.parametrize(("category", "scrutins"), sorted(SEED_SCRUTINS.items()))
def test_each_category_gets_its_scrutins_with_their_count(knowledge, category, scrutins):
    messages, events = run(
        ActionWhoVotes(knowledge), tracker("who_votes_where", entities={"categorie": category})
    )
    text = said(messages)
    count = len(scrutins)
    assert f"**{count} scrutin{'s' if count > 1 else ''}**" in text
    listed = {line.split("**")[1] for line in text.splitlines() if line.startswith("- **")}
    assert listed == scrutins
    assert events == [{"event": "slot", "timestamp": None, "name": "categorie", "value": category}]


def test_a_pes_votes_in_exactly_ctm_and_cta(knowledge):
    text = said(
        run(ActionHandleInform(knowledge), tracker("inform", entities={"categorie": "PES"}))[0]
    )
    assert "**2 scrutins**" in text
    assert "Comité technique ministériel" in text and "Comité technique académique" in text
    assert "CAPD" not in text


def test_without_a_category_the_assistant_asks_with_one_button_per_category(knowledge):
    messages, events = run(ActionWhoVotes(knowledge), tracker("who_votes_where"))
    payloads = [json.loads(b["payload"][len("/inform") :]) for b in messages[-1]["buttons"]]
    assert [p["categorie"] for p in payloads] == list(SEED_SCRUTINS)
    assert events == []


def test_a_remembered_category_is_used_when_none_is_named(knowledge):
    state = tracker("who_votes_where", slots={"categorie": "PsyEN intégré"})
    assert "**4 scrutins**" in said(run(ActionWhoVotes(knowledge), state)[0])


def test_who_votes_in_a_scrutin(knowledge):
    text = said(
        run(ActionWhoVotes(knowledge), tracker("who_votes_where", entities={"scrutin": "CCSA"}))[0]
    )
    assert "Directeur écoles d'application et spécialisé" in text
    assert "PES" not in text
    everyone = said(
        run(ActionWhoVotes(knowledge), tracker("who_votes_where", entities={"scrutin": "CTM"}))[0]
    )
    assert "Toutes les catégories de personnel" in everyone


def test_an_ambiguous_acronym_explains_every_scrutin_it_names(knowledge):
    text = said(
        run(ActionAnswerFaq(knowledge), tracker("what_is_scrutin", entities={"scrutin": "CAPN"}))[0]
    )
    assert "**CAPN PE**" in text and "**CAPN PsyEN**" in text


def test_webmail_of_a_named_academie_is_given_and_remembered(knowledge):
    messages, events = run(
        ActionWebmail(knowledge), tracker("webmail_access", entities={"academie": "Créteil"})
    )
    text = said(messages)
    assert "webmel.ac-creteil.fr" in text
    assert "I-Prof" in text
    assert events[0]["name"] == "academie" and events[0]["value"] == "Créteil"


def test_webmail_without_academie_offers_the_31_academies(knowledge):
    messages, _ = run(ActionWebmail(knowledge), tracker("webmail_access"))
    assert len(messages[-1]["buttons"]) == 31
    assert messages[-1]["buttons"][7]["title"] == "Créteil"


def test_webmail_uses_the_academie_remembered_from_earlier(knowledge):
    state = tracker("webmail_access", slots={"academie": "Guadeloupe"})
    assert "bwetamel.ac-guadeloupe.fr" in said(run(ActionWebmail(knowledge), state)[0])


def test_a_bare_academie_answers_its_webmail(knowledge):
    state = tracker("inform", entities={"academie": "Mayotte"})
    assert "webmel.ac-mayotte.fr" in said(run(ActionHandleInform(knowledge), state)[0])


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        ("2018-11-29T09:59", "pas encore ouvert, à partir du 29 novembre 2018 à 10h"),
        ("2018-11-30T12:00", "ouvert en ce moment, jusqu'au 6 décembre 2018 à 17h"),
        ("2018-12-06T16:59", "ouvert en ce moment"),
        ("2018-12-06T17:01", "terminé depuis le 6 décembre 2018 à 17h"),
        ("2018-12-06T16:30:00+00:00", "terminé"),  # 17:30 in Paris
    ],
)
def test_can_i_vote_now_depends_on_the_paris_clock(knowledge, monkeypatch, now, expected):
    monkeypatch.setenv("BOT_NOW", now)
    assert expected in said(run(ActionAnswerFaq(knowledge), tracker("voting_dates"))[0])


def test_contest_deadline_is_the_end_of_the_day(knowledge, monkeypatch):
    monkeypatch.setenv("BOT_NOW", "2018-11-14T23:00")
    assert "ouvert en ce moment" in said(run(ActionAnswerFaq(knowledge), tracker("contest"))[0])
    monkeypatch.setenv("BOT_NOW", "2018-11-15T00:01")
    assert "terminé" in said(run(ActionAnswerFaq(knowledge), tracker("contest"))[0])


def test_clarification_offers_the_two_likely_topics_then_the_menu(knowledge):
    ranking = [("nlu_fallback", 0.5), ("lost_voter_id", 0.3), ("greet", 0.1), ("results", 0.05)]
    first = tracker("nlu_fallback", "identif perdu ou quoi", ranking=ranking)
    messages, _ = run(ActionClarify(knowledge), first)
    assert [b["payload"] for b in messages[-1]["buttons"]] == [
        "/lost_voter_id",
        "/results",
        "/help",
    ]
    assert messages[-1]["buttons"][0]["title"] == "Identifiant électeur perdu ou non reçu"
    earlier = [
        {"event": "action", "name": "action_clarify"},
        {"event": "action", "name": "action_listen"},
    ]
    second = tracker("nlu_fallback", "bof", events=earlier, ranking=ranking)
    text = said(run(ActionClarify(knowledge), second)[0])
    assert "Je n'ai toujours pas compris" in text
    assert "assistance académique" in text


def test_a_message_without_words_gets_the_menu(knowledge):
    text = said(run(ActionClarify(knowledge), tracker("nlu_fallback", "😀 !!"))[0])
    assert "Je n'ai pas trouvé de question" in text


def test_help_lists_every_topic_of_the_knowledge_base(knowledge):
    messages, _ = run(ActionHelp(knowledge), tracker("help"))
    text = said(messages)
    for _, title in knowledge.answer_titles():
        assert f"- {title}" in text
    assert len(messages[-1]["buttons"]) == 6


def test_a_database_failure_gets_a_polite_message_not_a_crash(tmp_path):
    broken = Knowledge(make_engine(f"sqlite:///{tmp_path / 'empty.db'}"))
    messages, events = run(ActionAnswerFaq(broken), tracker("voting_dates"))
    assert [m["response"] for m in messages] == ["utter_service_error"]
    assert events == []


def test_a_name_shared_by_two_categories_asks_which_one(knowledge):
    messages, events = run(
        ActionHandleInform(knowledge), tracker("inform", entities={"categorie": "PsyEN"})
    )
    assert [b["title"] for b in messages[-1]["buttons"]] == ["PsyEN détaché", "PsyEN intégré"]
    assert events == []


def test_the_search_fallback_answers_a_close_section_and_offers_other_topics(knowledge):
    ranking = [("nlu_fallback", 0.5), ("how_to_vote", 0.3), ("lost_voter_id", 0.2)]
    state = tracker("nlu_fallback", "professions de foi des listes de candidats", ranking=ranking)
    messages, _ = run(ActionClarify(knowledge), state)
    assert "« Listes de candidats et professions de foi »" in messages[0]["text"]
    assert "listes de candidats et leurs professions de foi" in messages[0]["text"]
    assert [b["payload"] for b in messages[-1]["buttons"]] == ["/how_to_vote", "/help"]


def test_the_search_fallback_answers_about_what_the_message_names(knowledge):
    # The closest section is « Qui vote où ? » and the message names a category: its scrutins,
    # not the general question « Quelle est votre situation ? ».
    ranking = [("nlu_fallback", 0.5), ("who_votes_where", 0.3), ("how_to_vote", 0.2)]
    state = tracker(
        "nlu_fallback",
        "accompagnante, la liste des scrutins de ma catégorie de personnel",
        entities={"categorie": "AESH-AED"},
        ranking=ranking,
    )
    messages, events = run(ActionClarify(knowledge), state)
    assert "« Qui vote où ? »" in messages[0]["text"]
    assert "**AESH-AED** : vous votez à **3 scrutins**" in messages[0]["text"]
    assert "Quelle est votre situation ?" not in messages[0]["text"]
    assert {"event": "slot", "name": "categorie", "value": "AESH-AED"} in [
        {k: e[k] for k in ("event", "name", "value")} for e in events
    ]


def test_the_search_fallback_never_answers_an_unrelated_question(knowledge):
    ranking = [("nlu_fallback", 0.5), ("how_to_vote", 0.3)]
    state = tracker("nlu_fallback", "je cherche un logement de fonction", ranking=ranking)
    text = said(run(ActionClarify(knowledge), state)[0])
    assert "Je ne suis pas sûr d'avoir compris" in text
    assert "elections2018" not in text


def test_a_personal_value_given_unasked_is_not_used_and_the_chores_are_offered(knowledge):
    messages, _ = run(
        ActionHandleInform(knowledge), tracker("inform", "mon NUMEN est NUMEN_MASQUE")
    )
    assert "masquée et sera effacée automatiquement" in said(messages)
    assert [b["payload"] for b in messages[0]["buttons"]] == [
        "/lost_voter_id",
        "/lost_voter_password",
    ]


def _turns(*answers: str) -> list[dict]:
    """Earlier user messages, each answered by the given action."""
    events: list[dict] = [{"event": "action", "name": "action_session_start"}]
    for answer in answers:
        events += [
            {"event": "user", "text": "?"},
            {"event": "action", "name": "action_extract_slots"},
            {"event": "action", "name": answer},
            {"event": "action", "name": "action_listen"},
        ]
    return events


@pytest.mark.parametrize(
    ("earlier", "handed_over"),
    [
        ((), False),
        (("action_out_of_scope",), False),
        (("action_clarify", "action_out_of_scope"), True),
        (("action_out_of_scope", "action_out_of_scope"), True),
        # An answer in between resets the count.
        (("action_clarify", "action_answer_faq", "action_out_of_scope"), False),
    ],
)
def test_the_third_unanswered_message_in_a_row_goes_to_a_human(knowledge, earlier, handed_over):
    for action, intent in (
        (ActionOutOfScope(), "out_of_scope"),
        (ActionClarify(knowledge), "nlu_fallback"),
    ):
        messages, _ = run(action, tracker(intent, "blorp zanquette", events=_turns(*earlier)))
        payloads = [m["custom"] for m in messages if m.get("custom")]
        assert payloads == ([{"handoff": "incompris"}] if handed_over else []), action.name()
    # Out of scope still says it is not its topic, even when it hands over.
    messages, _ = run(ActionOutOfScope(), tracker("out_of_scope", "x", events=_turns(*earlier)))
    assert messages[0]["response"] == "utter_out_of_scope"


def test_asking_for_a_person_during_a_chore_ends_the_chore_and_forgets_its_values(tmp_path):
    vault = Vault(create_schema(f"sqlite:///{tmp_path / 'vault.db'}"), Fernet.generate_key())
    vault.put("test-user", {"numen": "01E9501234ABC"})
    state = tracker("ask_human", "un conseiller svp")
    state.active_loop = {"name": "voter_id_reissue_form"}
    messages, events = run(ActionRequestHuman(vault), state)
    assert [m["custom"] for m in messages] == [{"handoff": "demande"}]
    assert {"event": "active_loop", "name": None, "timestamp": None} in events
    assert vault.get("test-user", "numen") is None
