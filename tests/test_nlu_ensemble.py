"""The second intent classifier: trained, stored in the model, reloaded, averaged with DIET."""

from __future__ import annotations

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.ensemble import (
    PARTS,
    LinearIntentEnsemble,
    UntrustedModel,
    build_pipeline,
    combine,
    dump_pipeline,
    load_pipeline,
    mask_entities,
)

EXAMPLES = {
    "webmail_access": ["webmail de lyon", "messagerie academique", "ma boite mail pro"],
    "voting_dates": ["quand commence le vote", "date du scrutin", "le vote ferme quand"],
    "out_of_scope": ["meteo a brest", "combien gagne un prof", "recette de crepes"],
    "inform": ["Lyon", "je suis a Nice", "academie de Lille"],
}


def test_combine_is_a_weighted_mean_with_missing_intents_at_zero():
    diet = {"a": 0.8, "b": 0.2}
    linear = {"b": 0.6, "c": 0.4}
    assert combine(diet, linear, 1.0)[0] == ("a", 0.8)
    assert combine(diet, linear, 0.0)[0] == ("b", 0.6)
    ranking = dict(combine(diet, linear, 0.5))
    assert ranking == pytest.approx({"a": 0.4, "b": 0.4, "c": 0.2})


def test_mask_entities_replaces_each_span_by_its_kind_first_match_winning():
    text = "webmail de Lyon pour un AESH"
    spans = [(11, 15, "academie"), (24, 28, "categorie"), (12, 15, "academie")]
    assert mask_entities(text, spans) == "webmail de  zzacademiezz  pour un  zzcategoriezz "
    assert mask_entities(text, []) == text


def _message(
    text: str, diet: dict[str, float] | None = None, academie: str | None = None
) -> Message:
    message = Message(data={TEXT: text})
    if academie is not None:
        start = text.index(academie)
        end = start + len(academie)
        extractor = "KnowledgeBaseEntityExtractor"
        found = {"entity": "academie", "start": start, "end": end, "extractor": extractor}
        message.set(ENTITIES, [found], add_to_output=True)
    if diet is not None:
        ranking = [{"name": n, "confidence": c} for n, c in diet.items()]
        message.set(INTENT_RANKING_KEY, ranking, add_to_output=True)
        message.set(INTENT, ranking[0], add_to_output=True)
    return message


@pytest.fixture()
def trained(tmp_path):
    storage = LocalModelStorage(tmp_path)
    resource = Resource("ensemble")
    context = ExecutionContext(GraphSchema({}), "test")
    config = {"diet_weight": 0.5, "C": 10.0}
    component = LinearIntentEnsemble.create(config, storage, resource, context)
    data = TrainingData(
        [Message(data={TEXT: t, INTENT: i}) for i, texts in EXAMPLES.items() for t in texts]
    )
    component.train(data)
    return LinearIntentEnsemble.load(config, storage, resource, context)


def test_reloaded_classifier_alone_recognises_unseen_wording(trained):
    (message,) = trained.process([_message("c'est quand que le vote commence")])
    assert message.get(INTENT)["name"] == "voting_dates"
    assert message.get(PARTS)["diet"] == {}


def test_a_place_never_seen_in_training_counts_as_the_places_that_were(trained):
    """Training masked Lyon, Nice and Lille (the KB matcher found them); Bastia is in Corse."""
    (found,) = trained.process([_message("en poste a Bastia", academie="Bastia")])
    assert found.get(INTENT)["name"] == "inform"
    (unfound,) = trained.process([_message("en poste a Bastia")])
    assert unfound.get(PARTS)["linear"]["inform"] < found.get(PARTS)["linear"]["inform"]


def test_average_overrides_a_diet_guess_the_linear_model_contradicts(trained):
    diet = {"webmail_access": 0.55, "voting_dates": 0.45}
    (message,) = trained.process([_message("quand commence le vote", diet)])
    parts = message.get(PARTS)
    assert parts["diet"] == diet
    assert max(parts["linear"], key=parts["linear"].get) == "voting_dates"
    assert message.get(INTENT)["name"] == "voting_dates"
    ranking = message.get(INTENT_RANKING_KEY)
    assert ranking[0]["confidence"] == pytest.approx(
        0.5 * 0.45 + 0.5 * parts["linear"]["voting_dates"]
    )
    assert [r["confidence"] for r in ranking] == sorted(
        (r["confidence"] for r in ranking), reverse=True
    )
    assert message.as_dict(only_output_properties=True).get(PARTS) is None


def test_empty_text_is_left_as_diet_left_it(trained):
    diet = {"out_of_scope": 0.9}
    (message,) = trained.process([_message("   ", diet)])
    assert message.get(INTENT) == {"name": "out_of_scope", "confidence": 0.9}
    assert message.get(PARTS) is None


def test_untrained_model_keeps_diet_ranking(tmp_path):
    storage = LocalModelStorage(tmp_path)
    context = ExecutionContext(GraphSchema({}), "test")
    component = LinearIntentEnsemble.load({}, storage, Resource("never-trained"), context)
    diet = {"voting_dates": 0.7, "webmail_access": 0.3}
    (message,) = component.process([_message("quand commence le vote", diet)])
    assert message.get(INTENT)["name"] == "voting_dates"
    assert message.get(PARTS) is None


def test_tuning_script_reads_what_the_trained_model_answers():
    """`./scripts/tune-nlu` re-averages the two rankings itself: it must match the model."""
    import asyncio

    from rasa.core.agent import Agent

    from bench.tune import dev_examples, ensemble_config, parts
    from bot.training import ensure_model

    model = ensure_model()
    texts = [text for text, _ in dev_examples()[::40]]
    weight = float(ensemble_config()["diet_weight"])
    rankings = parts(model, texts)
    agent = Agent.load(str(model))
    for text, ranking in zip(texts, rankings, strict=True):
        parsed = asyncio.run(agent.parse_message(text))
        expected = combine(ranking["diet"], ranking["linear"], weight)[0]
        model_ranking = {r["name"]: r["confidence"] for r in parsed["intent_ranking"]}
        assert model_ranking[expected[0]] == pytest.approx(expected[1]), text
        best = max((r for r in parsed["intent_ranking"] if r["name"] != "nlu_fallback"),
                   key=lambda r: r["confidence"])  # fmt: skip
        assert best["name"] == expected[0], text
        assert PARTS not in parsed


def test_the_linear_pipeline_is_stored_with_skops_and_read_back_the_same():
    texts = ["mot de passe oublié", "webmail lyon", "j'ai perdu mon mdp", "messagerie créteil"]
    labels = ["lost_voter_password", "webmail_access", "lost_voter_password", "webmail_access"]
    pipeline = build_pipeline(10.0).fit(texts, labels)
    stored = dump_pipeline(pipeline)
    assert not stored.startswith(b"\x80")  # not a pickle
    again = load_pipeline(stored)
    probe = ["mdp perdu", "webmail de nice"]
    assert (again.predict_proba(probe) == pipeline.predict_proba(probe)).all()


def test_a_stored_pipeline_holding_an_unexpected_type_is_refused():
    from collections import OrderedDict

    from sklearn.preprocessing import FunctionTransformer

    pipeline = build_pipeline(10.0)
    pipeline.steps.insert(0, ("odd", FunctionTransformer(OrderedDict)))
    with pytest.raises(UntrustedModel, match="OrderedDict"):
        load_pipeline(dump_pipeline(pipeline))
