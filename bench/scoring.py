"""Intent-level scoring shared by the benchmark (bench/run.py) and the tuning (bench/tune.py)."""

from __future__ import annotations

OUT_OF_SCOPE = "out_of_scope"
# Intents after which the assistant gives no in-scope answer (a refusal or a clarification).
NOT_ANSWERED = {OUT_OF_SCOPE, "nlu_fallback"}


def share(pairs: list[tuple[str, str]], good) -> float:
    """The share of (truth, guess) pairs for which `good(truth, guess)` holds (0 when empty)."""
    return sum(1 for pair in pairs if good(*pair)) / max(len(pairs), 1)


def intent_figures(truths: list[str], guesses: list[str]) -> dict[str, float]:
    """Accuracy, macro-F1, out-of-scope recall and in-scope precision, as the benchmark."""
    from sklearn.metrics import f1_score

    pairs = list(zip(truths, guesses, strict=True))
    oos = [pair for pair in pairs if pair[0] == OUT_OF_SCOPE]
    answered = [pair for pair in pairs if pair[1] not in NOT_ANSWERED]
    return {
        "accuracy": share(pairs, lambda truth, guess: truth == guess),
        "macro_f1": f1_score(truths, guesses, average="macro", zero_division=0),
        "oos_recall": share(oos, lambda truth, guess: guess == OUT_OF_SCOPE),
        "in_scope_precision": share(answered, lambda truth, guess: truth != OUT_OF_SCOPE),
    }
