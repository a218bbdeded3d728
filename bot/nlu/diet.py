"""DIET trained on batches of messages of similar length: the same model, a fraction of the time.

Rasa pads every batch to its longest message. Our training data mixes one-line questions
(median 9 tokens) with pasted e-mails (up to about 80), and with Rasa's balanced batches nearly
every batch holds one long message, so the transformer spent most of its time on padding. Here
each epoch's examples, once shuffled and balanced as Rasa does, are sorted by length within
windows of a few batches, cut into batches, and the batches are shuffled: each batch is padded to
a length close to its own messages. What the model sees in an epoch is unchanged (the same
examples, the same batch size); only which messages share a batch changes. Prediction is
untouched. Figures: bench/report/first-run.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.nlu.classifiers.diet_classifier import DIETClassifier
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.training_data import TrainingData
from rasa.utils import train_utils
from rasa.utils.tensorflow.constants import SEQUENCE
from rasa.utils.tensorflow.data_generator import RasaBatchDataGenerator
from rasa.utils.tensorflow.model_data import Data, RasaModelData

# Batches per window sorted by length: large enough to group lengths, small enough that the
# window still mixes the intents Rasa's balancing spread over the epoch.
WINDOW_BATCHES = 8


def length_bucketed_order(
    lengths: np.ndarray, batch_size: int, rng: np.random.Generator
) -> np.ndarray:
    """Positions in an order where each batch (each `batch_size` slice) holds messages of
    similar length.

    Every position appears exactly once. Windows of `WINDOW_BATCHES` batches are sorted by
    length and cut into batches; the full batches are shuffled, and the one short batch (when
    the count is not a multiple of `batch_size`) stays last, so every slice is one batch."""
    window = batch_size * WINDOW_BATCHES
    batches: list[np.ndarray] = []
    for start in range(0, len(lengths), window):
        positions = np.arange(start, min(len(lengths), start + window))
        positions = positions[np.argsort(lengths[positions], kind="stable")]
        batches.extend(np.array_split(positions, range(batch_size, len(positions), batch_size)))
    short = [batch for batch in batches if len(batch) < batch_size]
    full = [batch for batch in batches if len(batch) == batch_size]
    rng.shuffle(full)
    return np.concatenate(full + short) if batches else np.arange(0)


def text_lengths(data: Data) -> np.ndarray:
    """The number of tokens of each example, read from its text sequence features."""
    return np.array([matrix.shape[0] for matrix in data[TEXT][SEQUENCE][0]])


class LengthBucketedBatches(RasaBatchDataGenerator):
    """Rasa's batch generator, with each epoch's examples regrouped by length."""

    def _shuffle_and_balance(self, batch_size: int) -> Data:
        data = super()._shuffle_and_balance(batch_size)
        if TEXT not in data or not data[TEXT].get(SEQUENCE):
            return data
        order = length_bucketed_order(text_lengths(data), batch_size, self._rng)
        return RasaModelData._data_for_ids(data, order)

    @property
    def _rng(self) -> np.random.Generator:
        # Seeded from numpy's global state, which DIET seeds from its `random_seed`.
        return np.random.default_rng(np.random.randint(2**31))


@contextlib.contextmanager
def _length_bucketed_batches() -> Iterator[None]:
    original = train_utils.RasaBatchDataGenerator
    train_utils.RasaBatchDataGenerator = LengthBucketedBatches
    try:
        yield
    finally:
        train_utils.RasaBatchDataGenerator = original


@DefaultV1Recipe.register(
    [
        DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER,
        DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR,
    ],
    is_trainable=True,
)
class BucketedDIETClassifier(DIETClassifier):
    """DIETClassifier whose training batches group messages of similar length."""

    def train(self, training_data: TrainingData) -> Resource:
        with _length_bucketed_batches():
            return super().train(training_data)
