"""Rasa graph components: French text normalisation and knowledge-base entity extraction."""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import (
    ENTITIES,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot import config
from bot.knowledge.kb_file import read_kb
from bot.knowledge.matching import EntityMatcher, Match
from bot.knowledge.situation import (
    ABOUT_OTHERS,
    ASKS_WHO,
    COMPARISON,
    FORMER,
    SITUATION,
    SituationReader,
    implied_topic,
)

# One character for one, so entity offsets stay valid; spaCy keeps "n’" as one token, so curly
# apostrophes become plain ones.
SAME_LENGTH = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'", "\u00a0": " ", "\t": " "})


def normalise(text: str) -> str:
    """The normalisation applied to every message, in training and at run time."""
    return text.translate(SAME_LENGTH)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class TextNormaliser(GraphComponent):
    """Replaces typographic apostrophes and odd spaces before tokenisation."""

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> TextNormaliser:
        return cls()

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process(training_data.training_examples)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT)
            if isinstance(text, str):
                message.set(TEXT, normalise(text))
        return messages


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class KnowledgeBaseEntityExtractor(GraphComponent, EntityExtractorMixin):
    """Extracts académie, staff category and scrutin names listed in `kb/faq_fr.md`.

    The names are read when the model is loaded, so an alias added to the knowledge base is
    understood after a restart, without retraining.
    """

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> KnowledgeBaseEntityExtractor:
        return cls(EntityMatcher.from_kb(read_kb(_kb_path())))

    def __init__(self, matcher: EntityMatcher) -> None:
        self._matcher = matcher

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT)
            if not isinstance(text, str):
                continue
            found = [
                {"entity": m.entity, "value": m.value, "start": m.start, "end": m.end}
                for m in self._matcher.find(text)
            ]
            message.set(
                ENTITIES,
                message.get(ENTITIES, []) + self.add_extractor_name(found),
                add_to_output=True,
            )
        return messages


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class SituationExtractor(GraphComponent, EntityExtractorMixin):
    """Reads the voter's situation from the knowledge-base names found before it.

    An académie named as a past one gets the role `avant`; a job described without a category
    name (« j'enseigne en CM2 ») becomes that category; « PsyEN » with « détachée » becomes
    « PsyEN détaché »; a message written for colleagues or comparing two categories says so
    with a `situation` entity. Runs after the classifiers, so their features do not change.
    """

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SituationExtractor:
        return cls(SituationReader.from_kb(read_kb(_kb_path())))

    def __init__(self, reader: SituationReader) -> None:
        self._reader = reader

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            text = message.get(TEXT)
            if not isinstance(text, str) or not text.strip():
                continue
            matches = _matches(message.get(ENTITIES) or [], text)
            situation = self._reader.read(text, matches)
            entities = self._entities(text, situation, message.get(ENTITIES, []))
            message.set(ENTITIES, entities, add_to_output=True)
            intent = message.get(INTENT) or {}
            chosen = intent.get(INTENT_NAME_KEY)
            scrutin_named = any(m.entity == "scrutin" for m in matches)
            topic = implied_topic(situation, scrutin_named, chosen)
            # Also when the classifier chose it but too unsure to pass the fallback threshold.
            if topic and (chosen != topic or intent.get("confidence", 0.0) < PROMOTED_CONFIDENCE):
                _promote(message, topic)
        return messages

    def _entities(
        self, text: str, situation: Any, entities: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        kept: list[dict[str, Any]] = []
        for entity in entities:
            kind, value = entity.get("entity"), entity.get("value")
            if kind == "academie" and value in situation.former_academies:
                entity = {**entity, "role": FORMER}
            if kind == "categorie" and value not in situation.categories:
                # A group made precise (« PsyEN » -> « PsyEN détaché », or both)
                for refined in situation.categories:
                    if refined.startswith(f"{value} ") and not _has(kept, "categorie", refined):
                        kept.append({**entity, "value": refined})
                continue
            kept.append(entity)
        added: list[dict[str, Any]] = []
        for category in situation.categories:  # described, not named (« adjoint de classe »)
            if not _has(kept, "categorie", category):
                start, end = self._reader.description_span(text, category)
                added.append({"entity": "categorie", "value": category, "start": start, "end": end})
        for flag, value in (
            (situation.about_others, ABOUT_OTHERS),
            (situation.comparison, COMPARISON),
            (ASKS_WHO in situation.asks, ASKS_WHO),
        ):
            if flag:
                added.append({"entity": SITUATION, "value": value, "start": 0, "end": 0})
        return kept + self.add_extractor_name(added)


def _matches(entities: list[dict[str, Any]], text: str) -> list[Match]:
    """The names the KnowledgeBaseEntityExtractor found earlier in the pipeline."""
    return [
        Match(e["entity"], e["value"], e["start"], e["end"], text[e["start"] : e["end"]])
        for e in entities
        if e.get("extractor") == KnowledgeBaseEntityExtractor.__name__
    ]


def _promote(message: Message, topic: str) -> None:
    """Put `topic` first in the intent ranking with at least PROMOTED_CONFIDENCE (or the
    classifier's own top score, if higher); the other intents share what is left in their
    proportions, so the FallbackClassifier sees a clear first choice."""
    ranking = [r for r in message.get(INTENT_RANKING_KEY) or [] if r.get(INTENT_NAME_KEY) != topic]
    top = max([r.get("confidence", 0.0) for r in ranking] + [PROMOTED_CONFIDENCE])
    rest = sum(r.get("confidence", 0.0) for r in ranking) or 1.0
    scaled = [
        {
            INTENT_NAME_KEY: r[INTENT_NAME_KEY],
            "confidence": r.get("confidence", 0.0) * (1 - top) / rest,
        }
        for r in ranking
    ]
    message.set(INTENT, {INTENT_NAME_KEY: topic, "confidence": top}, add_to_output=True)
    message.set(
        INTENT_RANKING_KEY,
        [{INTENT_NAME_KEY: topic, "confidence": top}, *scaled],
        add_to_output=True,
    )


def _has(entities: list[dict[str, Any]], kind: str, value: str) -> bool:
    return any(e.get("entity") == kind and e.get("value") == value for e in entities)


# The confidence given to a topic the names and the question's words agree on, when the
# classifier was less sure of its own choice (above the fallback threshold of config.yml).
PROMOTED_CONFIDENCE = 0.8


def _kb_path() -> str:
    return str(config.kb_path())
