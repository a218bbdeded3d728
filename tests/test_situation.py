"""Reading a voter's situation from long messages: the académie of now, the category a job
description designates, cities and département numbers, messages written for colleagues."""

from __future__ import annotations

import pytest

from bot.knowledge.kb_file import KbFormatError, parse_cities, read_kb
from bot.knowledge.matching import EntityMatcher
from bot.knowledge.situation import (
    SituationReader,
    emphasised_question,
    implied_topic,
    question_kinds,
)
from tests.conftest import KB


@pytest.fixture(scope="module")
def kb():
    return read_kb(KB)


@pytest.fixture(scope="module")
def matcher(kb):
    return EntityMatcher.from_kb(kb)


@pytest.fixture(scope="module")
def reader(kb):
    return SituationReader.from_kb(kb)


def read(reader, matcher, text):
    return reader.read(text, matcher.find(text))


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("j'enseigne en CM2 dans une école rurale", "PE et instituteur"),
        ("je suis prof en CDD au lycée pro", "Enseignant contractuel"),
        ("je dirige une école spécialisée", "Directeur écoles d'application et spécialisé"),
        ("psy de l'éducation nationale, option EDO, détachée", "PsyEN détaché"),
        ("je suis psychologue scolaire, pas encore intégrée dans le corps", "PsyEN détaché"),
        ("psychologue EDA intégrée depuis 2017", "PsyEN intégré"),
        ("j'accompagne un petit autiste en classe de CP", "AESH-AED"),
        ("je surveille la cour et la cantine au collège", "AESH-AED"),
        ("je suis à l'INSPE en alternance, à mi-temps devant une classe", "PES"),
        ("je suis adjointe du directeur de la SEGPA", "Directeur adjoint de SEGPA"),
        ("instit en maternelle, petite section", "PE et instituteur"),
        ("contractuelle en CM1 depuis septembre", "Enseignant contractuel"),
    ],
)  # fmt: skip
def test_a_job_described_in_words_is_the_right_category(reader, matcher, text, category):
    assert read(reader, matcher, text).categories == (category,)


def test_a_named_category_wins_over_descriptions_and_feminine_forms_count(reader, matcher):
    situation = read(reader, matcher, "je suis AESH en CDD dans une école élémentaire")
    assert situation.categories == ("AESH-AED",) and not situation.described
    assert read(reader, matcher, "institutrice en CP").categories == ("PE et instituteur",)


def test_a_psychologist_who_does_not_say_stays_ambiguous(reader, matcher):
    assert read(reader, matcher, "je suis psychologue scolaire").categories == ("PsyEN",)


def test_two_psychologists_compared_are_both_named(reader, matcher):
    situation = read(reader, matcher, "un PsyEN détaché et un intégré, même nombre de votes ?")
    assert set(situation.categories) == {"PsyEN détaché", "PsyEN intégré"}
    assert situation.comparison


def test_a_comparison_of_two_named_categories(reader, matcher):
    situation = read(reader, matcher, "le directeur adjoint de SEGPA vote-t-il comme les PE ?")
    assert situation.categories == ("Directeur adjoint de SEGPA", "PE et instituteur")
    assert situation.comparison


@pytest.mark.parametrize(
    "text",
    [
        "mes AESH me demandent pour quoi elles votent",
        "une de mes collègues est contractuelle, elle vote à quoi ?",
        "ma stagiaire voudrait savoir à quels scrutins elle participe",
    ],
)
def test_a_question_for_colleagues_is_about_them(reader, matcher, text):
    assert read(reader, matcher, text).about_others


def test_the_writers_own_category_is_not_about_others(reader, matcher):
    assert not read(reader, matcher, "je suis AESH, je vote pour quoi ?").about_others


@pytest.mark.parametrize(
    ("text", "now", "before"),
    [
        ("j'étais à Nantes jusqu'en juin, maintenant je suis en poste à Rennes, quel webmail ?",
         "Rennes", ("Nantes",)),
        ("En poste à Lyon depuis la rentrée, avant j'étais à Grenoble.", "Lyon", ("Grenoble",)),
        ("mutée à Lille cette année (anciennement académie d'Amiens)", "Lille", ("Amiens",)),
        ("j'ai quitté Créteil pour Versailles, c'est quoi l'adresse ?", "Versailles", ("Créteil",)),
    ],
)  # fmt: skip
def test_the_academie_of_now_not_the_one_before(reader, matcher, text, now, before):
    situation = read(reader, matcher, text)
    assert situation.academie == now
    assert situation.former_academies == before


@pytest.mark.parametrize(
    ("text", "academie"),
    [
        ("je suis prof à Quimper", "Rennes"),
        ("en poste à Bayonne depuis deux ans", "Bordeaux"),
        ("école de Saint-Jean-de-Maurienne", "Grenoble"),
        ("je travaille a chalons en champagne", "Reims"),
        ("collège de Brive-la-Gaillarde", "Limoges"),
        ("je bosse pour le 44", "Nantes"),
        ("c'est pour le 29, quel webmail ?", "Rennes"),
        ("le 29", "Rennes"),
        ("en Loire-Atlantique", "Nantes"),
        ("webmail du 974 svp", "Réunion"),
        ("instit à Brive, la messagerie ?", "Limoges"),
        ("je suis sur Charleville depuis la rentrée", "Reims"),
    ],
)
def test_cities_and_departement_numbers_lead_to_the_academie(matcher, text, academie):
    assert matcher.first(text, "academie") == academie


@pytest.mark.parametrize(
    "text",
    [
        "le 29 novembre je ne pourrai pas voter",
        "j'ai 44 élèves et 2 classes",
        "le sens de ma question est simple",
        "je suis dans le 06 12 34 56 78",
    ],
)
def test_dates_numbers_and_ordinary_words_are_not_places(matcher, text):
    assert matcher.first(text, "academie") is None


def test_a_city_name_shared_by_two_academies_is_not_guessed(matcher):
    # Saint-Denis: Seine-Saint-Denis (Créteil) or La Réunion.
    assert matcher.first("je suis à Saint-Denis", "academie") is None
    # The short name of a compound one, when towns of two académies share it.
    assert matcher.first("je suis à Villeneuve", "academie") is None
    assert matcher.first("je suis à Villefranche", "academie") is None


def test_a_short_name_is_a_place_only_after_a_preposition_and_never_a_common_word(matcher):
    assert matcher.first("la messagerie de Brive", "academie") == "Limoges"
    assert matcher.first("Brive", "academie") == "Limoges"  # a bare name is one
    assert matcher.first("Salon et cuisine refaits, mon mot de passe ?", "academie") is None
    assert matcher.first("je travaille en équipe à Pointe-à-Pitre", "academie") == "Guadeloupe"
    assert matcher.first("sur la pointe des pieds, au fort de la tempête", "academie") is None
    assert matcher.first("je suis à Saint-Denis de la Réunion", "academie") == "Réunion"


def test_the_city_table_covers_every_prefecture(kb):
    numbers = {d.number for a in kb.academies for d in a.departements}
    assert {c.departement for c in kb.cities} == numbers
    assert len(kb.cities) >= 101 + 200


def test_a_malformed_city_row_is_refused_in_french():
    table = (
        "| Ville | Département | Rang | Mot courant |\n|---|---|---|---|\n| Quimper | XX | x | |\n"
    )
    with pytest.raises(KbFormatError, match="Villes"):
        parse_cities(table)


def test_ordinary_words_close_to_a_job_name_are_not_one(matcher):
    assert matcher.find("j'insiste, je contacte qui ?") == []
    assert matcher.first("je suis instite", "categorie") == "PE et instituteur"


def test_a_departement_number_before_mais(matcher):
    assert matcher.first("je suis dans le 33 mais je ne trouve rien", "academie") == "Bordeaux"


@pytest.mark.parametrize(
    ("text", "now"),
    [
        ("Depuis septembre je ne suis plus dans le Nord, mutation pour la Haute-Savoie. Quelle "
         "messagerie ?", "Grenoble"),
        ("J'habite à Strasbourg mais mon école est à Sarreguemines, c'est quel webmail ?",
         "Nancy-Metz"),
    ],
)  # fmt: skip
def test_where_the_writer_no_longer_works_or_only_lives_is_not_the_academie(
    reader, matcher, text, now
):
    assert read(reader, matcher, text).academie == now


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("Je suis PE titulaire au CHU. Pour quoi je vote ?", {"scrutins"}),
        ("la ccp non tit enseignant ca concerne qui ?? les aesh aussi ?", {"qui"}),
        ("Je suis psy détachée. La CAPA PsyEN, c'est pour moi aussi ?", set()),
        ("electeurs CAPN PE ?", {"qui"}),
        (
            "Je suis à Quimper, j'ai besoin de ma messagerie pro, c'est quel site ?",
            {"messagerie", "besoin"},
        ),
        ("Mon mot de passe est refusé, pourquoi ?", set()),
        ("Je voudrais juste savoir lesquels me concernent. Je suis PE en CM1-CM2.", {"scrutins"}),
        ("Je souhaiterais connaître la liste des scrutins auxquels je suis appelée.", {"scrutins"}),
        ("Je n'arrive pas à savoir combien de fois je vote. Vous pouvez me faire la liste ?",
         {"scrutins"}),
        # The question points back to a sentence before it.
        ("On m'a dit d'aller sur le webmail pour avoir le lien. C'est quoi l'adresse ?",
         {"messagerie"}),
    ],
)  # fmt: skip
def test_what_the_question_asks(text, kinds):
    assert question_kinds(text) == kinds


def test_a_comparison_with_one_category_named_and_one_described(reader, matcher):
    situation = read(
        reader,
        matcher,
        "Un directeur d'école spécialisée vote-t-il comme un adjoint de classe ordinaire ?",
    )
    assert situation.categories == (
        "Directeur écoles d'application et spécialisé",
        "PE et instituteur",
    )
    assert situation.comparison


def test_results_of_earlier_elections_are_not_these_ones(reader, matcher):
    text = "Quels étaient les résultats des élections de 2014 dans mon département ?"
    situation = read(reader, matcher, text)
    assert implied_topic(situation, False, "results") == "out_of_scope"
    current = read(reader, matcher, "Quand aurons-nous les résultats du vote ?")
    assert implied_topic(current, False, "results") is None


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("De quoi j'aurai besoin le jour du vote ?", "how_to_vote"),
        ("qu'est-ce qu'on me demandera pour renvoyer mon identifiant ?", "lost_voter_id"),
        ("Qu'est-ce qu'il faut pour réinitialiser le mot de passe électeur ?",
         "lost_voter_password"),
    ],
)  # fmt: skip
def test_what_is_needed_is_answered_with_what_it_is_needed_for(reader, matcher, text, topic):
    assert implied_topic(read(reader, matcher, text), False, "greet") == topic


@pytest.mark.parametrize(
    ("text", "question"),
    [
        ("Accessoirement je voulais savoir où lire les professions de foi, mais ma vraie "
         "question : mon profil affiche le mauvais corps, comment le faire corriger ?",
         "mon profil affiche le mauvais corps, comment le faire corriger ?"),
        ("Le mail est arrivé, tout va bien de ce côté. Ce que je veux vraiment savoir, c'est : "
         "on vote jusqu'à quel jour ?", "on vote jusqu'à quel jour ?"),
        ("Je lis les professions de foi. Par contre je voudrais savoir si on peut déjà voter.",
         "je voudrais savoir si on peut déjà voter."),
        ("Bonjour, j'ai perdu mon identifiant, je fais comment ?", None),
    ],
)  # fmt: skip
def test_the_question_the_writer_points_at(text, question):
    span = emphasised_question(text)
    assert (text[span[0] : span[1]].strip(" :") if span else None) == question


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("Bonjour, la CAPD a-t-elle validé ma promotion à la hors classe ?", "out_of_scope"),
        ("Est-ce qu'on vote aussi en ligne pour le conseil d'école ?", "out_of_scope"),
        ("Quel syndicat choisir pour la CAPD ?", "out_of_scope"),
        # The question is the base's own: a ballot, a password, the mailbox.
        ("Je suis PE hors classe, je vote à quoi ?", "who_votes_where"),
        ("J'ai reçu ma fiche de paie. Comment je crée mon mot de passe électeur ?", None),
        ("Avec la grève de jeudi je n'ai pas pu créer mon mot de passe, je fais comment ?", None),
    ],
)
def test_a_near_domain_question_the_base_does_not_answer_is_off_topic(reader, matcher, text, topic):
    situation = read(reader, matcher, text)
    assert implied_topic(situation, "CAPD" in text) == topic
