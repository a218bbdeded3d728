"""Rasa graph components: French text normalisation and knowledge-base entity extraction."""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot import config, rasa_patches
from bot.knowledge.kb_file import read_kb
from bot.knowledge.matching import EntityMatcher

# This module is what the Rasa server imports of ours (config.yml): patch Rasa there.
rasa_patches.apply()

# One character for one, so entity offsets stay valid (see FIELD_NOTES: spaCy keeps "n’" whole).
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


def _kb_path() -> str:
    return str(config.kb_path())
