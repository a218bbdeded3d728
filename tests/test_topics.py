"""Every FAQ topic of the knowledge base is complete in Rasa's files, and adding one is a walk."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.actions.chores import not_an_answer
from bot.config import REPO_ROOT
from bot.knowledge import topics
from tests.actions_helpers import tracker

DOC = REPO_ROOT / "docs" / "adding-a-topic.md"
# A numbered step of the document names its file in backticks; its first code block is the text.
STEP = re.compile(r"^## \d+\. .*`([^`]+)`$", re.MULTILINE)
CODE_BLOCK = re.compile(r"^```[a-z]*\n(.*?)^```$", re.MULTILINE | re.DOTALL)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A copy of the files the check reads."""
    for folder in ("kb", "data"):
        shutil.copytree(REPO_ROOT / folder, tmp_path / folder)
    shutil.copy(REPO_ROOT / "domain.yml", tmp_path / "domain.yml")
    (tmp_path / "tests").mkdir()
    shutil.copy(REPO_ROOT / topics.TEST_STORIES_FILE, tmp_path / topics.TEST_STORIES_FILE)
    return tmp_path


def add_section(root: Path, title: str, key: str) -> None:
    kb = root / topics.KB_FILE
    section = f"\n### {title}\n<!-- id: {key} -->\nUne réponse.\n"
    kb.write_text(kb.read_text(encoding="utf-8") + section, encoding="utf-8")


def doc_steps() -> list[tuple[str, str]]:
    """(file, text to add) of each numbered step of docs/adding-a-topic.md, in order."""
    text = DOC.read_text(encoding="utf-8")
    heads = list(STEP.finditer(text))
    ends = [h.start() for h in heads[1:]] + [len(text)]
    steps = []
    for head, end in zip(heads, ends, strict=True):
        steps.append((head.group(1), CODE_BLOCK.search(text, head.end(), end).group(1)))
    return steps


def follow(root: Path, name: str, snippet: str) -> None:
    """Add `snippet` where the document says: under `intents:` in domain.yml, else at the end."""
    path = root / name
    text = path.read_text(encoding="utf-8")
    if name == topics.DOMAIN_FILE:
        assert "\nintents:\n" in text
        text = text.replace("\nintents:\n", "\nintents:\n" + snippet, 1)
    else:
        text = text.rstrip("\n") + "\n\n" + snippet
    path.write_text(text, encoding="utf-8")


def test_every_topic_of_the_knowledge_base_is_complete_in_rasas_files():
    missing = topics.check(REPO_ROOT)
    assert missing == [], "\n".join(missing)


def test_every_topic_is_a_side_question_during_a_chore():
    keys = topics.topic_keys()
    assert keys and all(not_an_answer(tracker(key)) for key in keys)


def test_a_section_alone_is_reported_with_every_piece_it_misses(project):
    add_section(project, "Bureaux de vote", "polling_stations")
    section = "kb/faq_fr.md section `polling_stations`"
    assert topics.check(project) == [
        f"{section} has no intent `polling_stations` in domain.yml",
        f"{section} has no examples in data/nlu.yml or data/nlu/",
        f"{section} has no rule answering it in data/rules/faq.yml",
        f"{section} has no side-question rule during password_reset_form in data/rules/chores.yml",
        f"{section} has no side-question rule during voter_id_reissue_form in "
        "data/rules/chores.yml",
        f"{section} has no test story in tests/test_stories.yml",
    ]


def test_a_rule_answering_from_a_missing_section_is_reported(project):
    kb = project / topics.KB_FILE
    text = kb.read_text(encoding="utf-8")
    without_results = re.sub(r"### Résultats\n.*?(?=### )", "", text, count=1, flags=re.DOTALL)
    assert without_results != text
    kb.write_text(without_results, encoding="utf-8")
    missing = topics.check(project)
    assert (
        "data/rules/faq.yml rule `results` answers intent `results` with action_answer_faq, "
        "but kb/faq_fr.md has no section `results`"
    ) in missing
    assert (
        "data/rules/chores.yml rule `results during voter_id_reissue_form` answers intent "
        "`results` with action_answer_faq, but kb/faq_fr.md has no section `results`"
    ) in missing


def test_an_intent_with_no_section_needs_a_french_name_for_the_console(project):
    follow(project, topics.DOMAIN_FILE, "  - ask_for_a_paper_ballot\n")
    assert topics.check(project) == [
        "intent `ask_for_a_paper_ballot` of domain.yml has no French name: a section of "
        "kb/faq_fr.md or an entry of CONVERSATION_LABELS in bot/knowledge/topics.py"
    ]
    assert set(topics.CONVERSATION_LABELS) >= {"greet", "ask_human", "nlu_fallback"}


def test_a_section_id_written_twice_is_reported(project):
    add_section(project, "Résultats, encore", "results")
    assert topics.check(project) == ["kb/faq_fr.md has the section id `results` twice"]


def test_a_malformed_knowledge_base_is_one_readable_line(project):
    kb = project / topics.KB_FILE
    kb.write_text(kb.read_text(encoding="utf-8").replace("<!-- id: results -->", ""), "utf-8")
    [line] = topics.check(project)
    assert line.startswith("kb/faq_fr.md: ") and "Résultats" in line


def test_following_the_document_adds_a_complete_topic(project):
    steps = doc_steps()
    assert [name for name, _ in steps] == [
        topics.KB_FILE,
        topics.DOMAIN_FILE,
        "data/nlu.yml",
        "data/rules/faq.yml",
        "data/rules/chores.yml",
        topics.TEST_STORIES_FILE,
    ]
    for name, snippet in steps:
        follow(project, name, snippet)
    new = set(topics.topic_keys(project)) - set(topics.topic_keys(REPO_ROOT))
    assert len(new) == 1
    assert topics.check(project) == []
    assert new <= topics.side_questions(project)
    assert new <= set(topics.faq_action_topics(project))


def test_the_document_gives_the_command_that_runs_the_check():
    assert "python -m bot.knowledge.topics" in DOC.read_text(encoding="utf-8")


def test_the_command_prints_the_list_and_fails_when_a_piece_is_missing(project, capsys):
    add_section(project, "Bureaux de vote", "polling_stations")
    assert topics.main(project) == 1
    out = capsys.readouterr().out
    assert "- kb/faq_fr.md section `polling_stations` has no intent `polling_stations`" in out


def test_the_command_succeeds_on_the_repository():
    result = subprocess.run(
        [sys.executable, "-m", "bot.knowledge.topics"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Every topic of kb/faq_fr.md is complete" in result.stdout
