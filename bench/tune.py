"""Choose the NLU ensemble's weight and fallback thresholds on the development set.

`./scripts/tune-nlu` runs it. It parses `bench/nlu/dev.yml` (never used for training, never the
held-out test set) with the current model, reads the two rankings that `LinearIntentEnsemble`
averages, and prints, for each weight of DIET in the average, the figures the held-out
evaluation reports; then, for the configured weight, what each fallback threshold would cost
(right answers turned into a clarification) and catch (wrong answers turned into one).
The choice is then written by hand into `config.yml`, with the figures in the README.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from bench.baseline import examples
from bench.scoring import OUT_OF_SCOPE, intent_figures
from bot.config import REPO_ROOT
from bot.nlu.ensemble import PARTS, LinearIntentEnsemble, combine
from bot.training import ensure_model

DEV = REPO_ROOT / "bench" / "nlu" / "dev.yml"
WEIGHTS = [round(0.1 * i, 1) for i in range(11)]
THRESHOLDS = [0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6]


def dev_examples(path: Path = DEV) -> list[tuple[str, str]]:
    """(text, intent) of the development set, normalised as at run time."""
    texts, intents = examples(path)
    return list(zip(texts, intents, strict=True))


def parts(model: Path, texts: list[str]) -> list[dict[str, dict[str, float]]]:
    """The DIET and linear rankings of each text, read from the ensemble's graph node."""
    from rasa.core.agent import Agent
    from rasa.core.channels.channel import UserMessage
    from rasa.engine.constants import PLACEHOLDER_MESSAGE

    processor = Agent.load(str(model)).processor
    nodes = processor.model_metadata.predict_schema.nodes
    node = next((name for name, n in nodes.items() if n.uses is LinearIntentEnsemble), None)
    if node is None:
        raise SystemExit("Le modèle n'a pas de LinearIntentEnsemble (config.yml).")
    messages = [UserMessage(text) for text in texts]
    output = processor.graph_runner.run(inputs={PLACEHOLDER_MESSAGE: messages}, targets=[node])
    return [message.get(PARTS) for message in output[node]]


def ensemble_config() -> dict:
    import yaml

    pipeline = yaml.safe_load((REPO_ROOT / "config.yml").read_text())["pipeline"]
    return next(step for step in pipeline if step["name"].endswith("LinearIntentEnsemble"))


def main() -> int:
    parser = argparse.ArgumentParser(prog="./scripts/tune-nlu")
    parser.add_argument("--dev", type=Path, default=DEV)
    parser.add_argument("--errors", action="store_true", help="list the dev errors")
    parser.add_argument("--weight", type=float, help="DIET weight to study (default: config.yml)")
    args = parser.parse_args()
    examples = dev_examples(args.dev)
    truths = [intent for _, intent in examples]
    rankings = parts(ensure_model(), [text for text, _ in examples])
    print(f"{len(examples)} messages de développement ({args.dev.relative_to(REPO_ROOT)}), "
          f"dont {truths.count(OUT_OF_SCOPE)} hors sujet\n")  # fmt: skip
    print("poids DIET | exactitude | macro-F1 | rappel hors sujet | précision dans le sujet")
    for weight in WEIGHTS:
        guesses = [combine(r["diet"], r["linear"], weight)[0][0] for r in rankings]
        f = intent_figures(truths, guesses)
        print(f"{weight:10.1f} | {f['accuracy']:10.3f} | {f['macro_f1']:8.3f} | "
              f"{f['oos_recall']:17.3f} | {f['in_scope_precision']:.3f}")  # fmt: skip

    weight = args.weight if args.weight is not None else ensemble_config().get("diet_weight", 0.5)
    best = [combine(r["diet"], r["linear"], weight)[0] for r in rankings]
    right = [score for (name, score), truth in zip(best, truths, strict=True) if name == truth]
    wrong = [score for (name, score), truth in zip(best, truths, strict=True) if name != truth]
    print(f"\nPoids {weight}: {len(right)} justes, {len(wrong)} fausses")
    print("seuil | justes perdues (clarification) | fausses rattrapées")
    for threshold in THRESHOLDS:
        lost = sum(score < threshold for score in right)
        caught = sum(score < threshold for score in wrong)
        print(f"{threshold:5.2f} | {lost:4d} ({lost / max(len(right), 1):.1%}) "
              f"| {caught:4d} / {len(wrong)}")  # fmt: skip
    if args.errors:
        confusions = Counter()
        print(f"\nErreurs au poids {weight} :")
        for (text, truth), (name, score) in zip(examples, best, strict=True):
            if name != truth:
                confusions[(truth, name)] += 1
                print(f"  {truth:>28} -> {name:<28} {score:.2f}  {text}")
        print("\nConfusions les plus fréquentes :", confusions.most_common(8))
    return 0


if __name__ == "__main__":
    sys.exit(main())
