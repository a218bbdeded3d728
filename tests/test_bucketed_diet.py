"""DIET's length-bucketed batches: every example once per epoch, batches of similar lengths,
and the generator Rasa builds during our DIET's training (and only then)."""

from __future__ import annotations

import numpy as np
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st
from rasa.shared.nlu.constants import TEXT
from rasa.utils import train_utils
from rasa.utils.tensorflow.constants import LABEL, SEQUENCE
from rasa.utils.tensorflow.data_generator import RasaBatchDataGenerator
from rasa.utils.tensorflow.model_data import FeatureArray, RasaModelData

from bot.nlu.diet import LengthBucketedBatches, _length_bucketed_batches, length_bucketed_order


def padded_tokens(lengths: np.ndarray, order: np.ndarray, batch_size: int) -> int:
    """What the transformer computes on: each batch padded to its longest message."""
    ordered = lengths[order]
    return sum(
        int(ordered[start : start + batch_size].max()) * len(ordered[start : start + batch_size])
        for start in range(0, len(ordered), batch_size)
    )


@settings(max_examples=200, deadline=None)
@given(
    lengths=st.lists(st.integers(min_value=1, max_value=120), min_size=1, max_size=900),
    batch_size=st.integers(min_value=1, max_value=70),
    seed=st.integers(min_value=0, max_value=2**16),
)
def test_every_example_once_and_each_batch_sorted_by_length(lengths, batch_size, seed):
    lengths = np.array(lengths)
    order = length_bucketed_order(lengths, batch_size, np.random.default_rng(seed))
    assert sorted(order.tolist()) == list(range(len(lengths)))
    # Each batch-sized slice is one sorted batch of one window: lengths never decrease inside it.
    for start in range(0, len(order), batch_size):
        batch = lengths[order[start : start + batch_size]]
        assert (np.diff(batch) >= 0).all()


def test_mixed_lengths_need_far_less_padding():
    rng = np.random.default_rng(2018)
    # Like the training data: mostly short questions, one in ten a pasted e-mail.
    lengths = np.where(
        rng.random(4000) < 0.9, rng.integers(3, 20, 4000), rng.integers(30, 80, 4000)
    )
    shuffled = rng.permutation(len(lengths))
    bucketed = shuffled[length_bucketed_order(lengths[shuffled], 128, rng)]
    assert padded_tokens(lengths, bucketed, 128) < 0.4 * padded_tokens(lengths, shuffled, 128)


def model_data(lengths: list[int]) -> RasaModelData:
    sequences = [scipy.sparse.coo_matrix(np.ones((n, 4))) for n in lengths]
    labels = [np.array([[n % 3]]) for n in lengths]
    return RasaModelData(
        label_key=LABEL,
        label_sub_key="ids",
        data={
            TEXT: {SEQUENCE: [FeatureArray(np.array(sequences), number_of_dimensions=3)]},
            LABEL: {"ids": [FeatureArray(np.array(labels), number_of_dimensions=3)]},
        },
    )


def test_rasa_builds_bucketed_batches_only_inside_our_training():
    lengths = [3, 70, 4, 65, 5, 60, 6, 55] * 8
    with _length_bucketed_batches():
        generator, _ = train_utils.create_data_generators(model_data(lengths), 8, epochs=2)
    assert isinstance(generator, LengthBucketedBatches)
    seen = 0
    for index in range(len(generator)):
        batch, _ = generator[index]
        indices, _, shape = batch[0], batch[1], batch[2]
        tokens = np.bincount(indices[:, 0])  # non-zero entries per example: 4 per token
        assert shape[1] == tokens.max() // 4  # padded to its own longest message
        assert tokens.max() // 4 - tokens.min() // 4 < 20  # short and long ones kept apart
        seen += shape[0]
    assert seen == len(lengths)
    generator, _ = train_utils.create_data_generators(model_data(lengths), 8, epochs=2)
    assert type(generator) is RasaBatchDataGenerator
