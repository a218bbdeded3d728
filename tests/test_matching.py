"""Académies, staff categories and scrutins are recognised as voters write them."""

from __future__ import annotations

import pytest

from bot.knowledge.kb_file import read_kb
from bot.knowledge.matching import EntityMatcher, fold
from tests.conftest import KB

MATCHER = EntityMatcher.from_kb(read_kb(KB))


@pytest.mark.parametrize(
    ("text", "entity", "value"),
    [
        ("webmail Créteil", "academie", "Créteil"),
        ("webmail creteil", "academie", "Créteil"),
        ("messagerie versaille", "academie", "Versailles"),
        ("jarrive pas sur ma boite monpellier", "academie", "Montpellier"),
        ("je suis à aix marseille", "academie", "Aix-Marseille"),
        ("ma boite ac-nancy-metz", "academie", "Nancy-Metz"),
        ("prenom.nom@ac-orleans-tours.fr", "academie", "Orléans-Tours"),
        ("académie de la Réunion", "academie", "Réunion"),
        ("je suis AVS", "categorie", "AESH-AED"),
        ("je suis instit", "categorie", "PE et instituteur"),
        ("professeure des écoles stagiaire", "categorie", "PES"),
        ("directrice adjointe de SEGPA", "categorie", "Directeur adjoint de SEGPA"),
        ("psy EN détachée", "categorie", "PsyEN détaché"),
        ("c koi la capd", "scrutin", "CAPD PE"),
        ("le comité technique ministériel", "scrutin", "CTM"),
        ("qui vote à la CCP AESH", "scrutin", "CCP non tit (AESH)"),
        ("c'est quoi la CAPN", "scrutin", "CAPN"),
        ("je bosse dans le 93", "academie", "Créteil"),
        ("webmail du 13", "academie", "Aix-Marseille"),
        ("je suis dans le 974", "academie", "Réunion"),
        ("dans le 2B", "academie", "Corse"),
        ("93", "academie", "Créteil"),
        ("messagerie seine saint denis", "academie", "Créteil"),
        ("je suis en Creuse", "academie", "Limoges"),
        ("webmail Finistère", "academie", "Rennes"),
        ("Haute-Savoie", "academie", "Grenoble"),
        ("j'enseigne dans l'Eure", "academie", "Rouen"),
        ("je travaille dans le Calvados", "academie", "Caen"),
    ],
)
def test_names_are_found_whatever_the_spelling(text, entity, value):
    assert MATCHER.first(text, entity) == value


def test_spans_point_into_the_original_text():
    text = "Bonjour, je suis PE à Créteil"
    found = MATCHER.find(text)
    assert [(m.entity, text[m.start : m.end]) for m in found] == [
        ("categorie", "PE"),
        ("academie", "Créteil"),
    ]


def test_the_longest_name_wins():
    found = MATCHER.find("directeur adjoint de SEGPA")
    assert [(m.entity, m.value) for m in found] == [("categorie", "Directeur adjoint de SEGPA")]


@pytest.mark.parametrize(
    "text",
    [
        "bonjour",
        "je veux voter",
        "mot de passe oublié",
        "pendant",
        "le vote ouvre le 29",  # a date, not the Finistère
        "cher collègue",  # not the Cher
        "la somme de 3 fois",  # not the Somme
        "il faut que je vienne",  # not the Vienne
    ],
)
def test_ordinary_words_are_not_names(text):
    assert MATCHER.find(text) == []


def test_fold_keeps_one_character_per_character():
    text = "Académie d’Orléans-Tours, œuvre 😀"
    assert len(fold(text)) == len(text)
