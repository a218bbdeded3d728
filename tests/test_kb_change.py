"""A fact changed once in kb/faq_fr.md changes every answer that states it."""

from __future__ import annotations

from pathlib import Path

from bot.actions import ActionAnswerFaq, ActionHelp, ActionWebmail, ActionWhoVotes
from bot.db import create_schema
from bot.knowledge import Knowledge, load_kb
from tests.actions_helpers import run, said, tracker
from tests.conftest import KB
from tests.test_actions import FAQ_INTENTS


def every_answer(knowledge: Knowledge) -> str:
    """All the assistant can say from the knowledge base, for every intent and every name."""
    replies = [run(ActionAnswerFaq(knowledge), tracker(i))[0] for i in FAQ_INTENTS]
    replies += [
        run(ActionWebmail(knowledge), tracker("webmail_access", entities={"academie": a.name}))[0]
        for a in knowledge.academies()
    ]
    replies += [
        run(ActionWhoVotes(knowledge), tracker("who_votes_where", entities={"categorie": c}))[0]
        for c in knowledge.categories()
    ]
    replies.append(run(ActionHelp(knowledge), tracker("help"))[0])
    return "\n".join(said(r) for r in replies)


def knowledge_from(text: str, folder: Path) -> Knowledge:
    (folder / "faq_fr.md").write_text(text, encoding="utf-8")
    engine = create_schema(f"sqlite:///{folder / 'kb.db'}")
    load_kb(engine, folder / "faq_fr.md")
    return Knowledge(engine)


def test_changing_a_date_and_a_host_in_the_kb_changes_every_answer(tmp_path):
    original = KB.read_text(encoding="utf-8")
    edited = (
        original.replace("| 2018-11-29 10:00 |", "| 2018-11-28 09:30 |")
        .replace("2018-10-11 | 2018-11-14 |", "2018-10-11 | 2018-11-21 |")
        .replace("| webmel.ac-creteil.fr |", "| messagerie.ac-creteil.fr |")
    )
    assert edited.count("2018-11-28 09:30") == 1 and edited.count("2018-11-21") == 1
    (tmp_path / "before").mkdir()
    (tmp_path / "after").mkdir()
    before = every_answer(knowledge_from(original, tmp_path / "before"))
    after = every_answer(knowledge_from(edited, tmp_path / "after"))

    for old, new in [
        ("29 novembre 2018 à 10h", "28 novembre 2018 à 9h30"),
        ("14 novembre 2018", "21 novembre 2018"),
        ("webmel.ac-creteil.fr", "messagerie.ac-creteil.fr"),
    ]:
        stated = before.count(old)
        assert stated >= 1, old
        assert after.count(old) == 0, f"{old!r} still stated after the change"
        assert after.count(new) == stated + before.count(new)


def test_reloading_an_unchanged_kb_is_a_no_op_and_a_changed_one_replaces_it(tmp_path):
    engine = create_schema(f"sqlite:///{tmp_path / 'kb.db'}")
    kb = tmp_path / "faq_fr.md"
    kb.write_text(KB.read_text(encoding="utf-8"), encoding="utf-8")
    assert load_kb(engine, kb) is True
    assert load_kb(engine, kb) is False
    kb.write_text(kb.read_text(encoding="utf-8").replace("| 8 |", "| 10 |"), encoding="utf-8")
    assert load_kb(engine, kb) is True
    assert Knowledge(engine).rule("mdp_longueur_min") == "10"
    assert len(Knowledge(engine).academies()) == 31
