"""Search the knowledge base answers for a question: the last resort before "pas compris".

TF-IDF over character n-grams of accent-free text (scikit-learn), so SMS spelling and typos
still meet the words of `kb/faq_fr.md`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import linear_kernel

from bot.knowledge.matching import fold_key


@dataclass(frozen=True)
class Hit:
    key: str
    score: float


class AnswerSearch:
    """Ranks answers (key, title, text) by similarity to a question."""

    def __init__(self, answers: list[tuple[str, str, str]]) -> None:
        self._keys = [key for key, _, _ in answers]
        # The title is what a question most resembles: count it twice.
        documents = [f"{title} {title} {text}" for _, title, text in answers]
        self._vectorizer = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(3, 5), preprocessor=fold_key, sublinear_tf=True
        )
        self._matrix = self._vectorizer.fit_transform(documents)

    def rank(self, question: str, limit: int = 3) -> list[Hit]:
        if not fold_key(question):
            return []
        scores = linear_kernel(self._vectorizer.transform([question]), self._matrix)[0]
        order = scores.argsort()[::-1][:limit]
        return [Hit(self._keys[i], float(scores[i])) for i in order]
