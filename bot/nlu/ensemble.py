"""A second intent classifier on sparse n-grams, averaged with DIET's ranking.

DIET learns from spaCy tokens and count features; a logistic regression on TF-IDF word and
character n-grams learns differently and errs on different messages (misspellings, unseen
words). Averaging the two probability rankings is more accurate than either alone on the
development set (`bench/nlu/dev.yml`, chosen by `./scripts/tune-nlu`); the weight and the
fallback thresholds were chosen there, never on the held-out test set.

It runs after DIET and before the FallbackClassifier, which then reads the averaged confidence.
The académie, staff-category and scrutin names found by the knowledge-base matcher are replaced
by one word per kind before the n-grams are taken ("en poste à Strasbourg" -> "en poste à
zzacademiezz"), in training and at run time, so a city or a job title the training examples
never used weighs like the ones they did.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.nlu.constants import (
    ENTITIES,
    ENTITY_ATTRIBUTE_END,
    ENTITY_ATTRIBUTE_START,
    ENTITY_ATTRIBUTE_TYPE,
    EXTRACTOR,
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.knowledge.situation import emphasised_question, question_focus

logger = logging.getLogger(__name__)

# Set on every message (not part of the parse result): the two rankings before averaging, so
# the tuning script can try other weights without retraining.
PARTS = "intent_ranking_parts"
RANKING_LENGTH = 10
# The trained pipeline is stored with skops, which loads only the types it is told to trust
# (no pickle: loading the archive cannot run code). These are the ones build_pipeline makes
# beyond skops' own trusted scikit-learn and NumPy types.
PIPELINE_FILE = "linear.skops"
TRUSTED_TYPES = frozenset({"scipy.sparse._csr.csr_matrix"})


class UntrustedModel(Exception):
    """The stored pipeline holds types skops does not trust and we did not expect."""


def build_pipeline(c: float) -> Any:
    """TF-IDF over words (1-2) and characters within words (2-5), accents folded, then LR."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    return make_pipeline(
        make_union(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, strip_accents="unicode"),
            TfidfVectorizer(
                analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, strip_accents="unicode"
            ),
        ),
        LogisticRegression(max_iter=3000, C=c),
    )


def dump_pipeline(pipeline: Any) -> bytes:
    import skops.io

    return skops.io.dumps(pipeline)


def load_pipeline(data: bytes) -> Any:
    """The pipeline stored by `dump_pipeline`; refuses one holding any other type."""
    import skops.io

    unexpected = set(skops.io.get_untrusted_types(data=data)) - TRUSTED_TYPES
    if unexpected:
        raise UntrustedModel(f"types not trusted in {PIPELINE_FILE}: {sorted(unexpected)}")
    return skops.io.loads(data, trusted=sorted(TRUSTED_TYPES))


def mask_entities(text: str, spans: list[tuple[int, int, str]]) -> str:
    """The text with each (start, end, kind) span replaced by one word for its kind."""
    parts, last = [], 0
    for start, end, kind in sorted(spans):
        if start < last:  # overlapping matches: the first one wins
            continue
        parts += [text[last:start], f" zz{kind}zz "]
        last = end
    return "".join(parts) + text[last:]


def matcher_spans(matcher: Any, text: str) -> list[tuple[int, int, str]]:
    return [(m.start, m.end, m.entity) for m in matcher.find(text)]


def extracted_spans(message: Message) -> list[tuple[int, int, str]]:
    """Spans the KnowledgeBaseEntityExtractor set on the message earlier in the pipeline."""
    return [
        (e[ENTITY_ATTRIBUTE_START], e[ENTITY_ATTRIBUTE_END], e[ENTITY_ATTRIBUTE_TYPE])
        for e in message.get(ENTITIES) or []
        if e.get(EXTRACTOR) == "KnowledgeBaseEntityExtractor"
    ]


def spans_within(
    spans: list[tuple[int, int, str]], start: int, end: int
) -> list[tuple[int, int, str]]:
    """The entity spans inside [start, end), relative to `start`."""
    return [(s - start, e - start, kind) for s, e, kind in spans if s >= start and e <= end]


def mix(whole: dict[str, float], focus: dict[str, float], weight: float) -> dict[str, float]:
    """The whole message's probabilities moved towards its question's by `weight`."""
    names = set(whole) | set(focus)
    return {n: (1 - weight) * whole.get(n, 0.0) + weight * focus.get(n, 0.0) for n in names}


def combine(
    diet: dict[str, float], linear: dict[str, float], diet_weight: float
) -> list[tuple[str, float]]:
    """Weighted mean of two rankings (an intent missing from one counts 0), best first."""
    names = set(diet) | set(linear)
    scores = {
        name: diet_weight * diet.get(name, 0.0) + (1 - diet_weight) * linear.get(name, 0.0)
        for name in names
    }
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class LinearIntentEnsemble(GraphComponent, IntentClassifier):
    """Logistic regression on TF-IDF n-grams, averaged with the previous classifier's ranking."""

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"diet_weight": 0.5, "C": 10.0, "focus_weight": 0.0, "emphasis_weight": 0.8}

    @classmethod
    def fingerprint_addon(cls, config: dict[str, Any]) -> str | None:
        """Retrain when what the examples are masked with changes (names in kb/, the matcher)."""
        from bot import config as settings
        from bot.knowledge import matching

        digest = hashlib.sha256()
        for path in sorted(settings.kb_path().parent.glob("*.md")):
            digest.update(path.read_bytes())
        digest.update(Path(matching.__file__).read_bytes())
        digest.update(PIPELINE_FILE.encode())  # a pipeline cached in another format is retrained
        return digest.hexdigest()

    @staticmethod
    def required_packages() -> list[str]:
        return ["sklearn", "skops"]

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        pipeline: Any = None,
    ) -> None:
        self._config = {**self.get_default_config(), **config}
        self._storage = model_storage
        self._resource = resource
        self._pipeline = pipeline

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> LinearIntentEnsemble:
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        examples = [m for m in training_data.intent_examples if isinstance(m.get(TEXT), str)]
        if len({m.get(INTENT) for m in examples}) < 2:
            logger.warning("LinearIntentEnsemble: fewer than two intents, nothing to learn.")
            return self._resource
        from bot import config
        from bot.knowledge.kb_file import read_kb
        from bot.knowledge.matching import EntityMatcher

        # The matcher the extractor uses at run time, not the examples' own annotations.
        matcher = EntityMatcher.from_kb(read_kb(str(config.kb_path())))
        texts = [mask_entities(m.get(TEXT), matcher_spans(matcher, m.get(TEXT))) for m in examples]
        self._pipeline = build_pipeline(float(self._config["C"]))
        self._pipeline.fit(texts, [m.get(INTENT) for m in examples])
        with self._storage.write_to(self._resource) as folder:
            (folder / PIPELINE_FILE).write_bytes(dump_pipeline(self._pipeline))
        return self._resource

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> LinearIntentEnsemble:
        pipeline = None
        try:
            with model_storage.read_from(resource) as folder:
                pipeline = load_pipeline((folder / PIPELINE_FILE).read_bytes())
        except (ValueError, FileNotFoundError):
            logger.warning("LinearIntentEnsemble: no trained pipeline; DIET's ranking is kept.")
        return cls(config, model_storage, resource, pipeline)

    def process(self, messages: list[Message]) -> list[Message]:
        if self._pipeline is None:
            return messages
        texts = [m.get(TEXT) for m in messages]
        usable = [i for i, text in enumerate(texts) if isinstance(text, str) and text.strip()]
        if not usable:
            return messages
        masked = [mask_entities(texts[i], extracted_spans(messages[i])) for i in usable]
        focused = {}  # index in `usable` -> the masked question sentence
        weights = {}  # index in `usable` -> how far the question moves the whole message's
        for n, index in enumerate(usable):
            focus = emphasised_question(texts[index])
            weights[n] = float(self._config["emphasis_weight"])
            if focus is None:
                focus = question_focus(texts[index])
                weights[n] = float(self._config["focus_weight"])
            if focus is not None:
                spans = spans_within(extracted_spans(messages[index]), *focus)
                focused[n] = mask_entities(texts[index][focus[0] : focus[1]], spans)
        probabilities = self._pipeline.predict_proba(masked + list(focused.values()))
        focus_rows = dict(zip(focused, probabilities[len(masked) :], strict=True))
        classes = list(self._pipeline.classes_)
        for n, (row, index) in enumerate(zip(probabilities, usable, strict=False)):
            message = messages[index]
            whole = {name: float(p) for name, p in zip(classes, row, strict=True)}
            question = (
                {name: float(p) for name, p in zip(classes, focus_rows[n], strict=True)}
                if n in focus_rows
                else whole
            )
            linear = mix(whole, question, weights[n])
            diet = {
                entry[INTENT_NAME_KEY]: float(entry["confidence"])
                for entry in message.get(INTENT_RANKING_KEY) or []
            }
            message.set(PARTS, {"diet": diet, "linear": whole, "question": question})
            weight = float(self._config["diet_weight"]) if diet else 0.0
            ranking = combine(diet, linear, weight)
            ranking = ranking[:RANKING_LENGTH]
            message.set(
                INTENT,
                {INTENT_NAME_KEY: ranking[0][0], "confidence": ranking[0][1]},
                add_to_output=True,
            )
            message.set(
                INTENT_RANKING_KEY,
                [{INTENT_NAME_KEY: name, "confidence": score} for name, score in ranking],
                add_to_output=True,
            )
        return messages
