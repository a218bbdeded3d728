"""The realistic benchmark reads answers in the assistant's own wording and judges them."""

from __future__ import annotations

import pytest
import yaml

from bench.realistic import SETS, judge, read_answer, rendered_answers
from bot.answers import wording

OUT_OF_SCOPE = yaml.safe_load((SETS.parent.parent / "domain.yml").read_text())["responses"][
    "utter_out_of_scope"
][0]["text"]


@pytest.fixture(scope="module")
def answers():
    return rendered_answers()


def test_a_category_answer_is_right_for_that_category_only(knowledge, answers):
    text = wording.eligibility("PES", knowledge.eligibility_for("PES"))
    assert judge({"expect": "scrutins", "category": "PES"}, read_answer(text, answers)) == "right"
    other = {"expect": "scrutins", "category": "AESH-AED"}
    assert judge(other, read_answer(text, answers)) == "wrong"


def test_a_webmail_answer_names_its_academie(knowledge, answers):
    text = wording.webmail(knowledge.academie("Rennes"))
    reading = read_answer(text, answers)
    assert judge({"expect": "webmail", "academie": "Rennes"}, reading) == "right"
    assert judge({"expect": "webmail", "academie": "Nantes"}, reading) == "wrong"


def test_a_comparison_needs_both_sides_and_the_right_yes_or_no(knowledge, answers):
    pair = [(c, knowledge.eligibility_for(c)) for c in ("PsyEN détaché", "PsyEN intégré")]
    reading = read_answer(wording.comparison(*pair), answers)
    case = {"expect": "compare", "categories": ["PsyEN détaché", "PsyEN intégré"], "same": False}
    assert judge(case, reading) == "right"
    assert judge({**case, "same": True}, reading) == "wrong"


def test_a_faq_fact_given_to_an_out_of_scope_question_is_wrong(knowledge, answers):
    faq = knowledge.answer("voting_dates").text
    assert judge({"expect": "refusal"}, read_answer(faq, answers)) == "wrong"
    assert judge({"expect": "refusal"}, read_answer(OUT_OF_SCOPE, answers)) == "right"


def test_a_question_back_is_hedged_not_wrong(answers):
    reading = read_answer(
        "Je ne suis pas sûr d'avoir compris. Votre question porte-t-elle…", answers
    )
    assert judge({"expect": "topic", "topics": ["lost_voter_id"]}, reading) == "hedged"


def test_the_sets_are_well_formed():
    for split in ("dev", "test"):
        for path in sorted(SETS.glob(f"{split}_*.yml")):
            for case in yaml.safe_load(path.read_text(encoding="utf-8")):
                assert case["text"].strip() and case["expect"], case["id"]
