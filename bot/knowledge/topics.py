"""The FAQ topics: the answer sections of `kb/faq_fr.md`, and what Rasa's files must say of each.

A topic is born in the knowledge base (the `<!-- id: … -->` of its section). Rasa's files stay
hand-written YAML, so each topic must also appear there: an intent in domain.yml, examples in
data/, a rule that answers it, a side-question rule during each form (without one the question
is taken as the form's answer), and a test story. `check()` lists what is missing;
`python -m bot.knowledge.topics` prints that list (docs/adding-a-topic.md walks through it).

People read intents by their French names (`topic_names`): a topic by its section's title, the
conversation's own intents (greet, nlu_fallback…) by `CONVERSATION_LABELS`.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.config import REPO_ROOT
from bot.knowledge.kb_file import KbFormatError, read_kb

KB_FILE = "kb/faq_fr.md"
DOMAIN_FILE = "domain.yml"
DATA_DIR = "data"
TEST_STORIES_FILE = "tests/test_stories.yml"
FAQ_ACTION = "action_answer_faq"
# Conversation intents that a form answers and then asks its question again, like every topic.
CONVERSATION_SIDE_QUESTIONS = frozenset({"help", "bot_challenge", "greet", "thank", "chitchat"})
# The French names of the intents that are no answer of the knowledge base (a topic is named by
# its section's title), for the people who read what the assistant understood: the agents'
# console, the statistics. `check()` wants one for every other intent of domain.yml.
# `ask_human` has a section too, titled for its answer (« Parler à une personne »): a user's
# message is named for what it asks. `nlu_fallback` is Rasa's FallbackClassifier's.
CONVERSATION_LABELS = {
    "greet": "Salutation",
    "goodbye": "Au revoir",
    "thank": "Remerciement",
    "chitchat": "Conversation courante",
    "bot_challenge": "Demande si l'assistant est un robot",
    "ask_human": "Demande à parler à une personne",
    "help": "Demande d'aide sur l'assistant",
    "inform": "Précision donnée à l'assistant",
    "out_of_scope": "Question hors périmètre",
    "affirm": "Oui",
    "deny": "Non",
    "cancel": "Annulation de la démarche",
    "correct_value": "Correction d'une information donnée",
    "password_shared": "Mot de passe écrit dans le message (masqué)",
    "nlu_fallback": "Question non comprise",
}
# The C parser when PyYAML has it: data/ reads in milliseconds instead of about a second.
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Turn:
    """An intent and the action that follows it, in a rule or a story of `source`."""

    intent: str
    action: str
    source: str
    form: str | None = None  # the form a rule's condition requires to be active


@dataclass
class RasaFiles:
    """What Rasa's files say about intents: declared, exemplified, answered."""

    intents: set[str] = field(default_factory=set)
    forms: list[str] = field(default_factory=list)
    examples: set[str] = field(default_factory=set)  # intents with at least one example
    rule_openings: list[Turn] = field(default_factory=list)  # each rule's first intent
    turns: list[Turn] = field(default_factory=list)  # every intent of the rules and stories
    test_story_intents: set[str] = field(default_factory=set)
    unreadable: list[str] = field(default_factory=list)


def topic_keys(root: Path = REPO_ROOT) -> list[str]:
    """The ids of the answer sections of the knowledge base, in the file's order."""
    return [answer.key for answer in read_kb(root / KB_FILE).answers]


def topic_names(answer_titles: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The French name of every intent: its label in CONVERSATION_LABELS, else the title of its
    knowledge-base answer (`Knowledge.answer_titles()` gives them)."""
    return {**dict(answer_titles), **CONVERSATION_LABELS}


def side_questions(root: Path = REPO_ROOT) -> frozenset[str]:
    """Intents a form answers on the side before asking its question again: every topic of the
    knowledge base, and small talk."""
    return frozenset(topic_keys(root)) | CONVERSATION_SIDE_QUESTIONS


def faq_action_topics(root: Path = REPO_ROOT) -> list[str]:
    """The topics some rule or story answers with `action_answer_faq`, in the file's order."""
    answered = {t.intent for t in read_rasa_files(root).turns if t.action == FAQ_ACTION}
    return [key for key in topic_keys(root) if key in answered]


def read_rasa_files(root: Path) -> RasaFiles:
    """Read domain.yml, every YAML file under data/ and the test stories."""
    found = RasaFiles()
    domain = _load(root, DOMAIN_FILE, found)
    for intent in domain.get("intents") or []:
        found.intents.add(next(iter(intent)) if isinstance(intent, dict) else str(intent))
    found.forms = list(domain.get("forms") or {})
    for path in sorted((root / DATA_DIR).rglob("*.yml")):
        name = path.relative_to(root).as_posix()
        content = _load(root, name, found)
        for block in content.get("nlu") or []:
            if "intent" in block and block.get("examples"):
                found.examples.add(block["intent"])
        for rule in content.get("rules") or []:
            source = f"{name} rule `{rule.get('rule')}`"
            form = _active_form(rule.get("condition") or [])
            steps = rule.get("steps") or []
            found.turns += _turns(steps, source, form)
            found.rule_openings += _turns(steps[:2], source, form)
        for story in content.get("stories") or []:
            found.turns += _turns(story.get("steps") or [], f"{name} story `{story.get('story')}`")
    for story in _load(root, TEST_STORIES_FILE, found).get("stories") or []:
        found.test_story_intents |= {s["intent"] for s in story.get("steps") or [] if "intent" in s}
    return found


def _load(root: Path, name: str, found: RasaFiles) -> dict[str, Any]:
    """The YAML mapping of a file; empty when it is missing or unreadable (noted in `found`)."""
    path = root / name
    if not path.exists():
        return {}
    try:
        content = yaml.load(path.read_text(encoding="utf-8"), Loader=YAML_LOADER)
    except yaml.YAMLError as error:
        found.unreadable.append(f"{name} is not valid YAML: {error}")
        return {}
    return content if isinstance(content, dict) else {}


def _active_form(condition: list[dict[str, Any]]) -> str | None:
    return next((c["active_loop"] for c in condition if c.get("active_loop")), None)


def _turns(steps: list[dict[str, Any]], source: str, form: str | None = None) -> Iterator[Turn]:
    """Each intent of `steps` with the action right after it."""
    for step, following in itertools.pairwise(steps):
        if "intent" in step and "action" in following:
            yield Turn(step["intent"], following["action"], source, form)


def check(root: Path = REPO_ROOT) -> list[str]:
    """What Rasa's files miss for the topics of the knowledge base, one readable line each
    (empty when every topic is complete)."""
    try:
        keys = topic_keys(root)
    except (KbFormatError, OSError) as error:
        return [f"{KB_FILE}: {error}"]
    rasa = read_rasa_files(root)
    missing = list(rasa.unreadable)
    missing += [f"{KB_FILE} has the section id `{k}` twice" for k in _twice(keys)]
    answered_outside_forms = {t.intent for t in rasa.rule_openings if t.form is None}
    answered_during = {(t.intent, t.form) for t in rasa.rule_openings if t.form}
    for key in dict.fromkeys(keys):
        section = f"{KB_FILE} section `{key}`"
        if key not in rasa.intents:
            missing.append(f"{section} has no intent `{key}` in {DOMAIN_FILE}")
        if key not in rasa.examples:
            missing.append(f"{section} has no examples in data/nlu.yml or data/nlu/")
        if key not in answered_outside_forms:
            missing.append(f"{section} has no rule answering it in data/rules/faq.yml")
        for form in rasa.forms:
            if (key, form) not in answered_during:
                missing.append(
                    f"{section} has no side-question rule during {form} in data/rules/chores.yml"
                )
        if key not in rasa.test_story_intents:
            missing.append(f"{section} has no test story in {TEST_STORIES_FILE}")
    for intent in sorted(CONVERSATION_SIDE_QUESTIONS):
        for form in rasa.forms:
            if (intent, form) not in answered_during:
                missing.append(
                    f"side question `{intent}` has no rule during {form} in data/rules/chores.yml"
                )
    for intent in sorted(rasa.intents - set(keys) - set(CONVERSATION_LABELS)):
        missing.append(
            f"intent `{intent}` of {DOMAIN_FILE} has no French name: a section of {KB_FILE} or "
            "an entry of CONVERSATION_LABELS in bot/knowledge/topics.py"
        )
    for turn in rasa.turns:
        if turn.action == FAQ_ACTION and turn.intent not in keys:
            missing.append(
                f"{turn.source} answers intent `{turn.intent}` with {FAQ_ACTION}, "
                f"but {KB_FILE} has no section `{turn.intent}`"
            )
    return missing


def _twice(keys: list[str]) -> list[str]:
    return sorted({k for k in keys if keys.count(k) > 1})


def main(root: Path = REPO_ROOT) -> int:
    """Print what is missing; exit status 1 when something is."""
    missing = check(root)
    if not missing:
        count = len(topic_keys(root))
        print(f"Every topic of {KB_FILE} is complete in Rasa's files ({count} topics).")
        return 0
    print(f"Missing for the topics of {KB_FILE}:")
    for line in missing:
        print(f"- {line}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
