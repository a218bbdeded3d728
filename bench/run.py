"""Benchmark: held-out NLU quality, REST latency, training time, Rasa server memory.

`./scripts/benchmark` runs it. Prints the figures and writes them to `bench/results/latest.json`.
The held-out file `tests/nlu/heldout.yml` is never used for training.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.baseline import baseline_model, examples
from bench.scoring import NOT_ANSWERED, OUT_OF_SCOPE, intent_figures, share
from bot.config import REPO_ROOT
from bot.local_stack import LocalStack
from bot.training import ensure_model

HELDOUT = REPO_ROOT / "tests" / "nlu" / "heldout.yml"
RESULTS = REPO_ROOT / "bench" / "results"
REPORT = REPO_ROOT / "bench" / "report"
# The held-out NLU targets, checked in the report.
TARGETS = {
    "intent_accuracy": (0.97, "held-out intent accuracy"),
    "intent_macro_f1": (0.95, "held-out intent macro-F1"),
    "out_of_scope_recall": (0.90, "out-of-scope recall"),
    "in_scope_precision": (0.97, "in-scope precision (answered messages that were in scope)"),
    "entity_f1_academie": (0.95, "académie entity F1"),
    "entity_f1_categorie": (0.95, "staff-category entity F1"),
}
RASA = str(Path(sys.executable).parent / "rasa")

# A realistic mix of questions, sent round-robin by several simulated voters.
QUESTIONS = (
    "bonjour",
    "je suis AESH, je vote pour quoi ?",
    "webmail Créteil",
    "quand est-ce qu'on vote ?",
    "quelles sont les règles du mot de passe ?",
    "jai perdu mon identifiant electeur",  # starts the reissue form...
    "annuler",  # ...which this voter cancels
    "mdp electeur oublié",
    "laisse tomber",
    "comment créer mon mot de passe ?",
    "c'est quoi la CAPD ?",
    "je n'ai pas reçu le mail de création",
    "où voir les listes de candidats ?",
    "comment contester la liste électorale ?",
    "merci",
)


def heldout_quality(model: Path, out: Path) -> dict[str, float]:
    subprocess.run(
        [RASA, "test", "nlu", "--model", str(model), "--nlu", str(HELDOUT), "--out", str(out),
         "--successes"],
        cwd=REPO_ROOT, check=True, capture_output=True,
        env={**os.environ, "RASA_TELEMETRY_ENABLED": "false"},
    )  # fmt: skip
    report = json.loads((out / "intent_report.json").read_text())
    errors = json.loads((out / "intent_errors.json").read_text())
    successes = json.loads((out / "intent_successes.json").read_text())
    predictions = [(e["intent"], e["intent_prediction"]["name"]) for e in errors + successes]
    in_scope = [(truth, guess) for truth, guess in predictions if truth != OUT_OF_SCOPE]
    # "Answered": the assistant gave an in-scope answer (not "out of scope", not a clarification).
    answered = [(truth, guess) for truth, guess in predictions if guess not in NOT_ANSWERED]
    confident = [e for e in errors if e["intent_prediction"]["confidence"] >= 0.5]
    oos = report.get(OUT_OF_SCOPE, {})
    figures = {
        "heldout_messages": len(predictions),
        "intent_accuracy": report["accuracy"],
        "intent_macro_f1": report["macro avg"]["f1-score"],
        "out_of_scope_recall": oos.get("recall", 0.0),
        "out_of_scope_precision": oos.get("precision", 0.0),
        "in_scope_precision": share(answered, lambda truth, guess: truth != OUT_OF_SCOPE),
        "answer_precision": share(answered, lambda truth, guess: truth == guess),
        "in_scope_accuracy": share(in_scope, lambda truth, guess: truth == guess),
        "confident_errors": len(confident),
    }
    entities = out / "KnowledgeBaseEntityExtractor_report.json"
    if entities.exists():
        report = json.loads(entities.read_text())
        for name in ("academie", "categorie", "scrutin"):
            if name in report:
                figures[f"entity_f1_{name}"] = report[name]["f1-score"]
    return figures


def write_report(figures: dict, heldout: Path, target: Path) -> None:
    """bench/report/: the targets, per-intent figures, the confusion matrix and every error."""
    target.mkdir(parents=True, exist_ok=True)
    report = json.loads((heldout / "intent_report.json").read_text())
    errors = json.loads((heldout / "intent_errors.json").read_text())
    picture = heldout / "intent_confusion_matrix.png"
    if picture.exists():
        shutil.copy(picture, target / "intent_confusion_matrix.png")
    lines = [
        "# Held-out evaluation of the NLU",
        "",
        f"Model `{figures['model']}`, {figures['heldout_messages']} held-out messages "
        "(`tests/nlu/heldout.yml`, never used for training). Written by `./scripts/benchmark`.",
        "",
        "## Targets",
        "",
        "| figure | value | target | |",
        "|---|---|---|---|",
    ]
    for key, (threshold, label) in TARGETS.items():
        value = figures.get(key)
        if value is None:
            continue
        mark = "ok" if value >= threshold else "**not met**"
        lines.append(f"| {label} | {value:.3f} | >= {threshold} | {mark} |")
    margin = figures["intent_accuracy"] - figures["baseline_tfidf_logreg_accuracy"]
    lines += [
        "",
        f"Baseline (TF-IDF + logistic regression, same training data, same run): accuracy "
        f"{figures['baseline_tfidf_logreg_accuracy']:.3f}, macro-F1 "
        f"{figures['baseline_tfidf_logreg_macro_f1']:.3f}; the assistant's margin: "
        f"{margin:+.3f} accuracy.",
        "",
        "The assistant's intent classifier averages DIET and a logistic regression on TF-IDF "
        "n-grams (`bot/nlu/ensemble.py`, weight chosen on `bench/nlu/dev.yml`). Each alone on "
        f"the same held-out set: DIET {figures['diet_alone_accuracy']:.3f} accuracy, "
        f"out-of-scope recall {figures['diet_alone_out_of_scope_recall']:.3f}; linear "
        f"{figures['linear_alone_accuracy']:.3f}, out-of-scope recall "
        f"{figures['linear_alone_out_of_scope_recall']:.3f}.",
        "",
        "## Per intent",
        "",
        "| intent | precision | recall | F1 | support |",
        "|---|---|---|---|---|",
    ]
    for intent, row in sorted(report.items()):
        if isinstance(row, dict) and "support" in row and not intent.endswith("avg"):
            lines.append(
                f"| {intent} | {row['precision']:.3f} | {row['recall']:.3f} | "
                f"{row['f1-score']:.3f} | {row['support']} |"
            )
    lines += [
        "",
        "## Confusion matrix",
        "",
        "![intent confusion matrix](intent_confusion_matrix.png)",
        "",
        f"## Errors ({len(errors)})",
        "",
        "| message | expected | predicted | confidence |",
        "|---|---|---|---|",
    ]
    for error in sorted(errors, key=lambda e: (e["intent"], e["text"])):
        text = error["text"].replace("|", "\\|").replace("\n", " ")
        guess = error["intent_prediction"]
        lines.append(
            f"| {text} | {error['intent']} | {guess['name']} | {guess['confidence']:.2f} |"
        )
    (target / "README.md").write_text("\n".join(lines) + "\n")


def baseline(train: Path = REPO_ROOT / "data") -> dict[str, float]:
    """The baseline on the held-out set: same data, same held-out."""
    from sklearn.metrics import accuracy_score, f1_score

    test_texts, test_intents = examples(HELDOUT)
    predicted = baseline_model(train).predict(test_texts)
    return {
        "baseline_tfidf_logreg_accuracy": accuracy_score(test_intents, predicted),
        "baseline_tfidf_logreg_macro_f1": f1_score(test_intents, predicted, average="macro"),
    }


def ensemble_parts(model: Path) -> dict[str, float]:
    """Held-out accuracy and out-of-scope recall of each half of the ensemble alone."""
    from bench.tune import parts
    from bot.nlu.ensemble import combine

    texts, intents = examples(HELDOUT)
    rankings = parts(model, texts)
    result = {}
    for name, weight in (("diet_alone", 1.0), ("linear_alone", 0.0)):
        guesses = [combine(r["diet"], r["linear"], weight)[0][0] for r in rankings]
        f = intent_figures(intents, guesses)
        result[f"{name}_accuracy"] = f["accuracy"]
        result[f"{name}_out_of_scope_recall"] = f["oos_recall"]
    return result


def cross_validation(folds: int, out: Path) -> dict[str, float]:
    """`rasa test nlu --cross-validation` on the training data (slow: one training per fold)."""
    subprocess.run(
        [RASA, "test", "nlu", "--nlu", "data", "--cross-validation", "--folds", str(folds),
         "--out", str(out)],
        cwd=REPO_ROOT, check=True, capture_output=True,
        env={**os.environ, "RASA_TELEMETRY_ENABLED": "false"},
    )  # fmt: skip
    report = json.loads((out / "intent_report.json").read_text())
    return {
        f"cv{folds}_intent_accuracy": report["accuracy"],
        f"cv{folds}_intent_macro_f1": report["macro avg"]["f1-score"],
    }


def latency(model: Path, messages: int, voters: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        stack = LocalStack(work, model)
        started = time.monotonic()
        stack.start()
        startup = time.monotonic() - started
        try:
            for question in QUESTIONS[:3]:  # warm-up, not measured
                stack.say(question, "warm-up")
            timings = []
            for i in range(messages):
                question = QUESTIONS[i % len(QUESTIONS)]
                begin = time.perf_counter()
                reply = stack.say(question, f"voter-{i % voters}")
                timings.append((time.perf_counter() - begin) * 1000)
                if not reply:
                    raise RuntimeError(f"no answer to {question!r}")
            memory = stack.peak_memory_mb("rasa")
        finally:
            stack.stop()
    timings.sort()
    return {
        "rest_messages": messages,
        "rest_p50_ms": statistics.median(timings),
        "rest_p95_ms": timings[int(0.95 * len(timings)) - 1],
        "rest_max_ms": timings[-1],
        "rasa_peak_rss_mb": memory,
        "startup_seconds": startup,
    }


def main() -> int:
    parser = argparse.ArgumentParser(prog="./scripts/benchmark")
    parser.add_argument("--messages", type=int, default=260)
    parser.add_argument("--voters", type=int, default=20)
    parser.add_argument(
        "--cross-validation", type=int, metavar="FOLDS", help="also cross-validate (slow)"
    )
    parser.add_argument(
        "--realistic-split", choices=("dev", "test"), default="dev",
        help="split of bench/realistic/ to score (test: only to measure, once)",
    )  # fmt: skip
    args = parser.parse_args()
    model = ensure_model()
    train_seconds = model.with_name(model.name[: -len(".tar.gz")] + ".train-seconds")
    figures: dict[str, float | str] = {"model": model.name}
    if train_seconds.exists():
        figures["training_seconds"] = float(train_seconds.read_text())
    RESULTS.mkdir(parents=True, exist_ok=True)
    figures.update(heldout_quality(model, RESULTS / "heldout"))
    figures.update(baseline())
    figures.update(ensemble_parts(model))
    if args.cross_validation:
        figures.update(cross_validation(args.cross_validation, RESULTS / "cross-validation"))
    write_report(figures, RESULTS / "heldout", REPORT)
    figures.update(latency(model, args.messages, args.voters))
    # Answers to realistic voters' messages, end to end (bench/realistic.py; dev unless asked).
    from bench import realistic

    answers = realistic.run(args.realistic_split)
    figures.update({f"realistic_{args.realistic_split}_{k}": v for k, v in answers.items()
                    if isinstance(v, (int, float))})  # fmt: skip
    figures.update(realistic.baseline(args.realistic_split))
    (RESULTS / "latest.json").write_text(json.dumps(figures, indent=2) + "\n")
    width = max(len(k) for k in figures)
    for key, value in figures.items():
        shown = f"{value:.3f}" if isinstance(value, float) else value
        print(f"{key:<{width}}  {shown}")
    print(
        f"report: {REPORT.relative_to(REPO_ROOT)}/README.md (per intent, confusion matrix, errors)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
