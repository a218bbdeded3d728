"""Answers to realistic voters' messages, scored end to end through the gateway.

`./scripts/benchmark-realistic [--split dev|test|test2]` starts the whole assistant on loopback
(portal, actions, Rasa, gateway), sends each message of `bench/realistic/<split>_*.yml` as a
new voter through the chat API, reads the answer the voter would see, and says whether it is
the answer the set's writer expected: the right FAQ section, the right académie's webmail
host, the right scrutins for the described role, or an honest refusal. The sets were written
by separate writers who never saw the training data or the other sets; they are never trained
on. Settings are chosen on the `dev` split; the `test` and `test2` splits are only measured
(README says how many times).

Each answer is one of:
- right: the expected answer;
- hedged: a question back or a clarification that states no wrong fact;
- confidently wrong: another answer, given as the answer.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

from bot.config import REPO_ROOT

SETS = REPO_ROOT / "bench" / "realistic"
RESULTS = REPO_ROOT / "bench" / "results"
# The voters' clock: during the vote, when every chore is open.
DURING_THE_VOTE = "2018-11-30T12:00"

# Markers of the assistant's own sentences (bot/actions/*wording.py, domain.yml responses).
REFUSAL = "Je n'ai pas cette information"
HEDGED_SEARCH = "Je ne suis pas certain d'avoir compris"
HEDGES = (
    "Je ne suis pas sûr d'avoir compris",
    "Je n'ai pas compris",
    "Je n'ai toujours pas compris",
    "Désolé, je n'ai pas compris",
    "Je n'ai pas trouvé de question",
    "Je peux vous aider sur ces sujets",
    "Quelle est votre académie ?",
    "Quelle est votre situation ?",
    "recouvre plusieurs situations",
    "ne figure pas dans le tableau",
)
REISSUE = ("nouvel identifiant électeur**", "La demande d'un nouvel identifiant électeur")
HANDOFF = ("Un conseiller va reprendre", "Aucun conseiller n'est disponible")
RESET = ("réinitialisation de votre mot de passe électeur", "réinitialiser votre mot de passe")
ELIGIBILITY = re.compile(
    r"\*\*([^*]+)\*\* : (?:vous votez|les personnels de cette catégorie votent) à \*\*"
)
SCRUTIN_HEAD = re.compile(r"\*\*([^*]+)\*\* : [^\n]+\.\n[^\n]+\n(?:Votent à ce scrutin|Toutes)")
WEBMAIL = re.compile(r"\*\*([^*]+)\*\* : messagerie professionnelle \*\*([^*]+)\*\*")
YES_NO = re.compile(r"^\*\*(Oui|Non)\*\* :", re.MULTILINE)


@dataclass
class Reading:
    """What an answer says: the facts it states and whether it hedges."""

    topics: set[str] = field(default_factory=set)
    webmails: set[str] = field(default_factory=set)
    categories: list[str] = field(default_factory=list)
    scrutins: set[str] = field(default_factory=set)
    yes_no: str | None = None
    refusal: bool = False
    hedged: bool = False
    ambiguous_category: bool = False
    asks_academie: bool = False
    asks_category: bool = False
    not_in_matrix: bool = False

    @property
    def states_facts(self) -> bool:
        return bool(self.topics or self.webmails or self.categories or self.scrutins)


def read_answer(text: str, answers: dict[str, str]) -> Reading:
    """The facts an answer states, from the assistant's own wording."""
    reading = Reading()
    reading.refusal = REFUSAL in text
    reading.hedged = HEDGED_SEARCH in text or any(h in text for h in HEDGES)
    reading.asks_academie = "Quelle est votre académie ?" in text
    reading.asks_category = "Quelle est votre situation ?" in text
    reading.ambiguous_category = "recouvre plusieurs situations" in text
    reading.not_in_matrix = "ne figure pas dans le tableau" in text
    for key, body in answers.items():
        if body and body in text:
            reading.topics.add(key)
    if any(marker in text for marker in REISSUE):
        reading.topics.add("lost_voter_id")
    if any(marker in text for marker in RESET):
        reading.topics.add("lost_voter_password")
    if any(marker in text for marker in HANDOFF):
        reading.topics.add("ask_human")
    reading.webmails = {name for name, _ in WEBMAIL.findall(text)}
    reading.categories = ELIGIBILITY.findall(text)
    reading.scrutins = set(SCRUTIN_HEAD.findall(text))
    found = YES_NO.search(text)
    reading.yes_no = found.group(1) if found else None
    return reading


def judge(case: dict, reading: Reading) -> str:
    """`right`, `hedged` or `wrong` (stated as the answer) for one expected answer."""
    expect = case["expect"]
    right = False
    if expect == "topic":
        wanted = set(case["topics"])
        right = bool(reading.topics & wanted)
        if "webmail_access" in wanted and reading.asks_academie:
            right = True
        if "who_votes_where" in wanted and reading.asks_category:
            right = True
    elif expect == "webmail":
        right = case["academie"] in reading.webmails
    elif expect == "scrutins":
        right = case["category"] in reading.categories
        if right and "answer_yes" in case and reading.yes_no is not None:
            right = (reading.yes_no == "Oui") == bool(case["answer_yes"])
    elif expect == "compare":
        right = set(case["categories"]) <= set(reading.categories)
        if right and reading.yes_no is not None and "same" in case:
            right = (reading.yes_no == "Oui") == _yes(case["same"])
        if case["categories"][0] == case["categories"][-1] or len(set(case["categories"])) == 1:
            right = case["categories"][0] in reading.categories
    elif expect == "scrutin_voters":
        right = case["scrutin"] in reading.scrutins
    elif expect == "clarify_category":
        right = reading.ambiguous_category
    elif expect == "refusal":
        right = reading.refusal and not reading.states_facts
    elif expect == "not_in_matrix":
        right = reading.not_in_matrix
    if right:
        return "right"
    if expect == "refusal" and reading.states_facts:
        return "wrong"  # near-domain out of scope answered with a FAQ fact, even hedged
    if reading.hedged:
        return "hedged"
    if reading.states_facts or reading.refusal:
        return "wrong"
    return "hedged"  # a greeting or a thank-you: unhelpful, but states nothing wrong


def _yes(value: object) -> bool:
    return value is True or str(value).lower() in {"yes", "oui", "true"}


def load(split: str) -> list[dict]:
    cases = []
    for path in sorted(SETS.glob(f"{split}_*.yml")):
        cases += yaml.safe_load(path.read_text(encoding="utf-8"))
    return cases


def rendered_answers() -> dict[str, str]:
    """The first sentence of each knowledge-base answer, as the assistant writes it."""
    from bot.db import create_schema
    from bot.knowledge.store import Knowledge, load_kb

    engine = create_schema("sqlite://")
    load_kb(engine, REPO_ROOT / "kb" / "faq_fr.md")
    knowledge = Knowledge(engine)
    firsts = {}
    for key, _ in knowledge.answer_titles():
        text = knowledge.answer(key).text
        firsts[key] = re.split(r"(?<=[.:])\s", text, maxsplit=1)[0][:80]
    return firsts


def run(split: str, limit: int | None = None, keep_logs: Path | None = None) -> dict:
    from bot.local_stack import LocalStack
    from bot.training import ensure_model

    cases = load(split)[:limit]
    if not cases:
        raise SystemExit(f"Aucun message dans {SETS}/{split}_*.yml")
    answers = rendered_answers()
    model = ensure_model()
    verdicts: list[tuple[dict, str, str]] = []
    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as workdir:
        stack = LocalStack(Path(workdir), model, env={"BOT_NOW": DURING_THE_VOTE}).start()
        try:
            for n, case in enumerate(cases):
                started = time.perf_counter()
                try:
                    messages = stack.chat(case["text"].strip(), voter=f"voter-{n}")
                except requests.HTTPError as error:  # counted as a wrong answer, with its body
                    messages = [
                        {"text": f"HTTP {error.response.status_code} {error.response.text}"}
                    ]
                latencies.append((time.perf_counter() - started) * 1000)
                text = "\n\n".join(m.get("text") or "" for m in messages)
                verdicts.append((case, judge(case, read_answer(text, answers)), text))
        finally:
            stack.stop()
            if keep_logs:
                shutil.copytree(stack.logs, keep_logs, dirs_exist_ok=True)
    return summarise(split, verdicts, latencies)


def summarise(split: str, verdicts: list[tuple[dict, str, str]], latencies: list[float]) -> dict:
    total = len(verdicts)
    counts = Counter(verdict for _, verdict, _ in verdicts)
    refusals = [(c, v) for c, v, _ in verdicts if c["expect"] == "refusal"]
    by_class: dict[str, Counter] = {}
    for case, verdict, _ in verdicts:
        by_class.setdefault(case.get("class", "?"), Counter())[verdict] += 1
    latencies.sort()
    return {
        "split": split,
        "messages": total,
        "answer_accuracy": counts["right"] / total,
        "hedged": counts["hedged"] / total,
        "confident_wrong": counts["wrong"] / total,
        "out_of_scope": len(refusals),
        "out_of_scope_answered_with_a_fact": sum(v == "wrong" for _, v in refusals),
        "latency_p50_ms": statistics.median(latencies),
        "latency_p95_ms": latencies[int(0.95 * (len(latencies) - 1))],
        "by_class": {k: dict(v) for k, v in sorted(by_class.items())},
        "errors": [
            {
                "id": c["id"],
                "class": c.get("class"),
                "verdict": v,
                "expect": _expected(c),
                "text": c["text"].strip(),
                "answer": a[:300],
            }
            for c, v, a in verdicts
            if v != "right"
        ],
    }


def _expected(case: dict) -> str:
    keys = ("topics", "academie", "category", "categories", "scrutin", "candidates")
    detail = next((case[k] for k in keys if k in case), "")
    return f"{case['expect']} {detail}".strip()


# The intents whose answer can be the expected one (for tuning the classifier alone).
ACCEPTABLE = {
    "webmail": {"webmail_access", "inform"},
    "scrutins": {"who_votes_where", "inform", "what_is_scrutin"},
    "compare": {"who_votes_where", "inform"},
    "clarify_category": {"who_votes_where", "inform"},
    "not_in_matrix": {"who_votes_where", "inform"},
    "scrutin_voters": {"who_votes_where", "what_is_scrutin", "inform"},
    "refusal": {"out_of_scope"},
}


def acceptable_intents(case: dict) -> set[str]:
    if case["expect"] == "topic":
        return set(case["topics"])
    return ACCEPTABLE[case["expect"]]


def baseline(split: str) -> dict[str, float]:
    """The TF-IDF + logistic regression baseline of `bench/run.py`, trained on the same data:
    the share of the split's messages whose intent could give the expected answer."""
    from bench.baseline import baseline_model

    cases = load(split)
    predicted = baseline_model().predict([c["text"].strip() for c in cases])
    good = [p in acceptable_intents(c) for c, p in zip(cases, predicted, strict=True)]
    return {"realistic_baseline_intent_accuracy": sum(good) / len(cases)}


def tune(split: str) -> None:
    """Intent-level figures of the realistic split for each DIET weight and question weight,
    from the rankings the trained model's ensemble node keeps (no retraining)."""
    from bench.tune import parts
    from bot.nlu.ensemble import combine, mix
    from bot.training import ensure_model

    cases = load(split)
    rankings = parts(ensure_model(), [c["text"].strip() for c in cases])
    print("diet  focus  accepted  oos_recall  confident_wrong(>=0.4)")
    for diet_weight in (0.0, 0.2, 0.3, 0.4, 0.5):
        for focus in (0.0, 0.25, 0.5, 0.75, 1.0):
            good = oos = oos_total = wrong = 0
            for case, part in zip(cases, rankings, strict=True):
                linear = mix(part["linear"], part["question"], focus)
                name, score = combine(part["diet"], linear, diet_weight)[0]
                ok = name in acceptable_intents(case)
                good += ok
                wrong += (not ok) and score >= 0.4
                if case["expect"] == "refusal":
                    oos_total += 1
                    oos += name == "out_of_scope"
            n = len(cases)
            print(
                f"{diet_weight:4.1f} {focus:6.2f} {good / n:9.3f} {oos / oos_total:11.3f} "
                f"{wrong / n:10.3f}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(prog="./scripts/benchmark-realistic")
    parser.add_argument("--split", choices=("dev", "dev2", "test", "test2"), default="dev")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--errors", action="store_true", help="print every answer not right")
    parser.add_argument("--tune", action="store_true", help="intent-level weights, no server")
    args = parser.parse_args()
    if args.tune:
        tune(args.split)
        return 0
    figures = run(args.split, args.limit, RESULTS / f"realistic-{args.split}-logs")
    figures.update(baseline(args.split))
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"realistic-{args.split}.json"
    out.write_text(json.dumps(figures, ensure_ascii=False, indent=1))
    if args.errors:
        for error in figures["errors"]:
            print(f"--- {error['id']} [{error['class']}] {error['verdict']}: {error['expect']}")
            print(error["text"])
            print(f">>> {error['answer']}")
    for key, value in figures.items():
        if key not in ("errors", "by_class"):
            print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
    for name, counts in figures["by_class"].items():
        print(f"  {name}: {counts}")
    print(f"(détails : {out})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
