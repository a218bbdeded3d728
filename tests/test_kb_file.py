"""The knowledge base file is complete, consistent, and its mistakes are caught."""

from __future__ import annotations

import pytest

from bot.config import REPO_ROOT
from bot.knowledge.kb_file import KbFormatError, parse_kb, read_kb
from bot.knowledge.topics import FAQ_ACTION, read_rasa_files
from tests.conftest import KB

SEED_SCRUTINS = {
    "AESH-AED": {"CTM", "CTA", "CCP non tit (AESH)"},
    "Enseignant contractuel": {"CTM", "CTA", "CCP non tit (enseignant)"},
    "Directeur adjoint de SEGPA": {"CTM", "CTA", "CAPN PE", "CAPD PE", "CCPA"},
    "Directeur écoles d'application et spécialisé": {"CTM", "CTA", "CAPN PE", "CAPD PE", "CCSA"},
    "PE et instituteur": {"CTM", "CTA", "CAPN PE", "CAPD PE"},
    "PES": {"CTM", "CTA"},
    "PsyEN détaché": {"CTM", "CTA", "CAPN PE", "CAPD PE", "CAPN PsyEN", "CAPA PsyEN"},
    "PsyEN intégré": {"CTM", "CTA", "CAPN PsyEN", "CAPA PsyEN"},
}


def test_the_31_academies_of_the_seed_each_have_a_webmail_host():
    kb = read_kb(KB)
    assert len(kb.academies) == 31
    hosts = {a.name: a.webmail_host for a in kb.academies}
    assert hosts["Créteil"] == "webmel.ac-creteil.fr"
    assert hosts["Guadeloupe"] == "bwetamel.ac-guadeloupe.fr"
    assert hosts["Nancy-Metz"] == "id.ac-nancy-metz.fr"
    assert len({a.domain for a in kb.academies}) == 31


def test_the_101_departements_each_belong_to_one_academie():
    kb = read_kb(KB)
    numbers = [d.number for a in kb.academies for d in a.departements]
    assert len(numbers) == len(set(numbers)) == 101
    assert all(a.departements for a in kb.academies)
    by_number = {d.number: a.name for a in kb.academies for d in a.departements}
    assert by_number["93"] == "Créteil"
    assert by_number["2A"] == by_number["2B"] == "Corse"
    assert by_number["976"] == "Mayotte"
    assert by_number["14"] == "Caen" and by_number["76"] == "Rouen"  # 2018: not yet Normandie


def test_the_eligibility_matrix_is_the_seed_one():
    kb = read_kb(KB)
    assert len(kb.scrutins) == 10
    assert {c.name: set(c.scrutins) for c in kb.categories} == SEED_SCRUTINS


def test_the_campaign_calendar_is_in_paris_time():
    kb = read_kb(KB)
    events = {e.key: e for e in kb.events}
    assert kb.timezone == "Europe/Paris"
    assert events["vote"].start.isoformat() == "2018-11-29T10:00:00"
    assert events["vote"].end.isoformat() == "2018-12-06T17:00:00"
    assert events["nouvel_identifiant"].end.isoformat() == "2018-12-06T17:00:00"
    assert events["contestation"].end.date().isoformat() == "2018-11-14"
    assert events["listes_candidats"].start.date().isoformat() == "2018-11-05"


def test_every_faq_topic_has_an_answer():
    """Every intent Rasa's rules and stories answer from the knowledge base has its section."""
    answers = read_kb(KB).answers
    keys = [a.key for a in answers]
    assert len(keys) == len(set(keys))
    answered = {t.intent for t in read_rasa_files(REPO_ROOT).turns if t.action == FAQ_ACTION}
    assert answered and answered <= set(keys)
    assert all(a.template for a in answers)


def test_answer_paragraphs_are_unwrapped_but_lists_kept():
    answer = next(a for a in read_kb(KB).answers if a.key == "password_rules")
    lines = answer.template.splitlines()
    assert lines[0] == "Votre mot de passe personnel électeur doit :"
    assert sum(line.startswith("- ") for line in lines) == 3


def _broken(old: str, new: str) -> str:
    text = KB.read_text(encoding="utf-8")
    assert old in text
    return text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        ("| PES | X | X | | | | | | | | | 2 |", "| PES | X | X | | | | | | | | | 3 |", "annonce 3"),
        (
            "| vote | Vote électronique | 2018-11-29 10:00",
            "| vote | Vote | 29/11/2018",
            "illisible",
        ),
        ("{portail_url}", "{portail_adresse}", "portail_adresse"),
        ("| Lyon | webmail.ac-lyon.fr |", "| Lyon | webmail.lyon.example |", "Lyon"),
        ("<!-- id: results -->", "", "Résultats"),
        ("| Toulouse | Toulousse |", "| Toulon | Toulousse |", "Toulon"),
        ("| 93 | Seine-Saint-Denis | Créteil |", "| 93 | Seine-Saint-Denis | Bobigny |", "Bobigny"),
        ("| 94 | Val-de-Marne |", "| 93 | Val-de-Marne |", "93"),
        ("| vote | Vote électronique |", "| vote | Vote : en ligne |", "« vote » contient « : »"),
        # The editors' mark never reaches a voter: in an answer, or in a scrutin's description.
        ("je ne les connais pas.", "(source muette).", "Parler à une personne.*rédacteurs"),
        ("directeurs adjoints de SEGPA. |", "directeurs adjoints de SEGPA (Source muette). |",
         "Scrutin CCPA"),
    ],
)  # fmt: skip
def test_a_mistake_in_the_file_stops_loading_with_a_french_explanation(old, new, complaint):
    with pytest.raises(KbFormatError, match=complaint):
        parse_kb(_broken(old, new))


def test_a_name_shared_by_categories_is_a_group_and_must_name_several():
    assert "PsyEN" in read_kb(KB).category_groups
    with pytest.raises(KbFormatError, match="PES et"):
        parse_kb(_broken("| PsyEN | PsyEN,", "| PES et | PsyEN,"))
