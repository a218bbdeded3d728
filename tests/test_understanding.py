"""Long, indirect messages as real voters write them, through the whole assistant (gateway,
redaction, the trained model, the actions): one test per kind of difficulty.

The examples are our own, written for these tests; the measured figures come from the blind
sets of `bench/realistic/` (`./scripts/benchmark-realistic`).
"""

from __future__ import annotations

import itertools

import pytest

from tests.conftest import texts

REFUSAL = "Je n'ai pas cette information"
FAQ_FACTS = ("elections2018", "scrutin**", "ac-", "8 et 24", "par SMS", "29 novembre")
_voters = itertools.count()


def ask(live_bot, text: str) -> str:
    """One message from a new voter, through the gateway; everything the assistant answered."""
    return texts(live_bot.chat(text, voter=f"understanding-{next(_voters)}"))


def test_context_before_the_question_does_not_win(live_bot):
    reply = ask(
        live_bot,
        "Bonjour, la semaine dernière mon collègue m'a aidé pour la messagerie et j'ai bien créé "
        "mon mot de passe, tout a marché. Mais ce matin, au moment de voter, on me demande un "
        "identifiant que je n'ai jamais reçu. Je fais comment ?",
    )
    # The question (the voter ID) wins over the context's words (the mailbox, the password).
    assert "identifiant" in reply and "nouveau" in reply
    assert "messagerie professionnelle **" not in reply and "créer votre mot de passe" not in reply


@pytest.mark.parametrize(
    ("text", "category", "count"),
    [
        ("Bonjour, j'ai une classe de CE2 dans une petite école de campagne, à quels scrutins "
         "je participe ?", "PE et instituteur", 4),
        ("Je suis prof en CDD, recrutée sans concours, je vote pour quoi exactement ?",
         "Enseignant contractuel", 3),
        ("J'accompagne un élève autiste en classe depuis la rentrée. Pour quoi je vote ?",
         "AESH-AED", 3),
        ("Psychologue de l'éducation nationale option EDA, toujours détachée : mes scrutins ?",
         "PsyEN détaché", 6),
    ],
)  # fmt: skip
def test_a_role_described_in_words_gets_its_scrutins(live_bot, text, category, count):
    reply = ask(live_bot, text)
    assert f"**{category}**" in reply and f"**{count} scrutins**" in reply


def test_the_academie_of_now_not_the_one_before(live_bot):
    reply = ask(
        live_bot,
        "J'étais en poste à Nantes jusqu'en juin, maintenant je suis à Rennes. C'est quoi "
        "l'adresse de la messagerie ?",
    )
    assert "webmail.ac-rennes.fr" in reply and "webmel.ac-nantes.fr" not in reply


@pytest.mark.parametrize(
    ("text", "host"),
    [
        ("webmail pour le 44 svp", "webmel.ac-nantes.fr"),
        ("je travaille en Loire-Atlantique, quelle messagerie ?", "webmel.ac-nantes.fr"),
        ("Je suis prof à Quimper, c'est quoi l'adresse de ma messagerie pro ?",
         "webmail.ac-rennes.fr"),
        ("en poste à Bayonne, je cherche le webmail", "courrier.ac-bordeaux.fr"),
    ],
)  # fmt: skip
def test_places_given_any_way_lead_to_the_webmail(live_bot, text, host):
    assert host in ask(live_bot, text)


def test_a_side_question_inside_a_chore_is_answered_then_the_chore_resumes(live_bot):
    voter = "side-question"
    started = texts(live_bot.chat("j'ai perdu mon identifiant électeur", voter))
    assert "numéro de téléphone portable" in started
    side = texts(live_bot.chat("c'est quoi déjà mon NUMEN, il est écrit où ?", voter))
    assert "service RH académique" in side
    assert "numéro de téléphone portable" in side  # the question is asked again


@pytest.mark.parametrize(
    "text",
    [
        "Les élections au conseil d'administration du collège, c'est aussi en ligne avec le "
        "même mot de passe ?",
        "Bonjour, je voudrais savoir pour quel syndicat voter, lequel défend le mieux les AESH ?",
        "Ma mutation dans le 33 a été refusée, à qui dois-je écrire ?",
        "Est-ce que la grève de jeudi est maintenue ? Je dois prévenir les parents.",
    ],
)
def test_near_domain_questions_are_refused_without_a_faq_fact(live_bot, text):
    reply = ask(live_bot, text)
    assert not any(fact in reply for fact in FAQ_FACTS), reply


def test_what_is_needed_to_vote(live_bot):
    reply = ask(live_bot, "De quoi j'aurai besoin le jour du vote ?")
    assert "identifiant électeur" in reply and "mot de passe" in reply


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mdp electeur oublié stp", "mot de passe"),
        ("id electeur perdu jsp quoi faire", "SMS"),
        ("webmail Quimper ?", "webmail.ac-rennes.fr"),
    ],
)
def test_short_sms_forms(live_bot, text, expected):
    assert expected in ask(live_bot, text)


def test_a_comparison_answers_both_sides_with_yes_or_no(live_bot):
    reply = ask(live_bot, "Un PsyEN détaché et un PsyEN intégré votent-ils aux mêmes scrutins ?")
    assert reply.startswith("**Non**")
    assert "**PsyEN détaché**" in reply and "**PsyEN intégré**" in reply


def test_a_yes_no_check_on_one_scrutin(live_bot):
    reply = ask(live_bot, "Je suis PES, est-ce que je vote à la CAPD ?")
    assert reply.startswith("**Non**") and "**PES**" in reply


def test_on_behalf_of_colleagues_the_answer_is_about_them(live_bot):
    reply = ask(live_bot, "Je suis directrice. Mes AESH me demandent à quoi elles votent.")
    assert "**AESH-AED** : les personnels de cette catégorie votent" in reply
    assert "vous votez" not in reply


def test_talking_about_a_password_is_not_sharing_one(live_bot):
    reply = ask(live_bot, "le site refuse mon mot de passe, trop court d'après lui, pourquoi ?")
    assert "8 et 24 caractères" in reply
    assert "Ne communiquez jamais votre mot de passe" not in reply
