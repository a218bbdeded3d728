"""The running assistant (Rasa server + action server, real HTTP on loopback) answers in French.

The clock is pinned to 30 November 2018 at noon (Paris), during the vote.
"""

from __future__ import annotations

import pytest

from tests.conftest import buttons, texts


def test_eligibility_webmail_dates_and_password_rules_questions_get_correct_answers(live_bot):
    aesh = texts(live_bot.say("je suis AESH, je vote pour quoi ?"))
    assert "**3 scrutins**" in aesh and "CCP non tit (AESH)" in aesh
    assert "webmel.ac-creteil.fr" in texts(live_bot.say("webmail Créteil"))
    dates = texts(live_bot.say("quand est-ce qu'on vote ?"))
    assert "du 29 novembre 2018 à 10h au 6 décembre 2018 à 17h" in dates
    assert "ouvert en ce moment" in dates
    rules = texts(live_bot.say("quelles sont les règles du mot de passe ?"))
    assert "entre 8 et 24 caractères" in rules


def test_sms_style_questions_are_understood(live_bot):
    assert "uniquement par SMS" in texts(live_bot.say("jai perdu mon identifiant electeur", "sms"))
    assert "mot de passe oublié" in texts(live_bot.say("mdp electeur oublié", "sms"))
    assert "messagerie.ac-versailles.fr" in texts(live_bot.say("webmail versaille", "sms"))


def test_the_academie_chosen_with_a_button_is_remembered(live_bot):
    first = live_bot.say("comment accéder à ma messagerie professionnelle ?", "buttons")
    lyon = next(b for b in buttons(first) if b["title"] == "Lyon")
    assert "webmail.ac-lyon.fr" in texts(live_bot.say(lyon["payload"], "buttons"))
    assert "webmail.ac-lyon.fr" in texts(live_bot.say("et l'adresse du webmail ?", "buttons"))


def test_a_category_given_alone_after_the_question(live_bot):
    asked = live_bot.say("à quels scrutins je vote ?", "alone")
    assert len(buttons(asked)) == 8
    assert "**2 scrutins**" in texts(live_bot.say("je suis PES", "alone"))


@pytest.mark.parametrize(
    "question",
    ["quel temps fait-il à Brest ?", "combien gagne un professeur des écoles ?", "asdfgh"],
)
def test_out_of_scope_never_gets_a_faq_answer(live_bot, question):
    reply = texts(live_bot.say(question, "oos"))
    assert "Je n'ai pas cette information" in reply or "pas compris" in reply
    assert "elections2018" not in reply and "scrutin**" not in reply


@pytest.mark.parametrize(
    "message",
    [
        "",
        "   ",
        "a" * 10_000,
        "mot de passe " * 800,
        "😀😀😀",
        "<script>alert('x')</script>",
        "'; DROP TABLE events; --",
        "What is the weather like?",
        "\u0000\u202e",
    ],
)
def test_bad_input_gets_a_french_answer_and_no_stack_trace(live_bot, message):
    reply = live_bot.say(message, "bad-input")
    said = texts(reply)
    assert said.strip(), f"no answer to {message[:30]!r}"
    assert "Traceback" not in said and "Exception" not in said
    # and the conversation goes on
    assert "entre 8 et 24 caractères" in texts(live_bot.say("règles du mot de passe", "bad-input"))


def test_the_servers_logged_no_error(live_bot):
    live_bot.say("bonjour", "log-check")
    log = live_bot.log_text()
    assert "Traceback" not in log


def test_the_academie_is_read_from_a_professional_address(live_bot):
    reply = texts(
        live_bot.say(
            "je n'arrive pas à me connecter à ma messagerie camille.martin@ac-toulouse.fr",
            "address",
        )
    )
    assert "messagerie.ac-toulouse.fr" in reply


def test_a_departement_number_leads_to_its_academie_webmail(live_bot):
    reply = texts(live_bot.say("je bosse dans le 93, c'est quoi l'adresse de mon webmail ?", "dep"))
    assert "webmel.ac-creteil.fr" in reply


def test_an_ambiguous_job_name_gets_a_question_back(live_bot):
    reply = live_bot.say("je suis psy scolaire, je vote à quoi ?", "psy")
    assert [b["title"] for b in buttons(reply)] == ["PsyEN détaché", "PsyEN intégré"]
    assert "**6 scrutins**" in texts(live_bot.say(buttons(reply)[0]["payload"], "psy"))
