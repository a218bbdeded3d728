"""The baseline every NLU figure is compared with, and the examples of an NLU data file."""

from __future__ import annotations

from pathlib import Path

from bot.config import REPO_ROOT


def examples(path: Path) -> tuple[list[str], list[str]]:
    """(texts, intents) of the NLU examples in a file or a folder (stories and rules skipped)."""
    from rasa.shared.importers.importer import TrainingDataImporter

    from bot.nlu.components import normalise

    importer = TrainingDataImporter.load_from_dict(
        domain_path=str(REPO_ROOT / "domain.yml"), training_data_paths=[str(path)]
    )
    data = importer.get_nlu_data()
    return [normalise(m.get("text")) for m in data.intent_examples], [
        m.get("intent") for m in data.intent_examples
    ]


def baseline_model(train: Path = REPO_ROOT / "data"):
    """TF-IDF (words 1-2 + characters 2-5) and logistic regression, trained on our data."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    texts, intents = examples(train)
    model = make_pipeline(
        make_union(
            TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
        ),
        LogisticRegression(max_iter=3000, C=10),
    )
    return model.fit(texts, intents)
