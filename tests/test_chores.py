"""The chore actions on their own: calendar, portal failures, expired values, corrections.

Real SQLite files for the knowledge base and the vault; the portal is reached over real HTTP
(here a closed port, to prove a portal that does not answer gets a polite message).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.actions.chores import (
    PENDING_SLOT,
    RESET_FORM,
    ActionAskReissueConfirmed,
    ActionCancelChore,
    ActionCorrectValue,
    ActionOfferPasswordReset,
    ActionOfferVoterIdReissue,
    ActionSubmitPasswordReset,
    ActionSubmitVoterIdReissue,
    ChoreServices,
)
from bot.answers import chore_wording as say
from bot.db import create_schema
from bot.knowledge import Knowledge
from bot.local_stack import free_port
from bot.personal_data.vault import Vault
from bot.portal.client import PortalClient, PortalUnavailable, ResetOutcome, ResetStatus
from tests.actions_helpers import run, said, tracker


@pytest.fixture()
def vault(tmp_path: Path) -> Vault:
    return Vault(create_schema(f"sqlite:///{tmp_path / 'vault.db'}"), Fernet.generate_key())


@pytest.fixture()
def services(knowledge: Knowledge, vault: Vault) -> ChoreServices:
    closed = PortalClient(f"http://127.0.0.1:{free_port()}", "token", timeout=1.0)
    return ChoreServices(knowledge, vault, closed)


def slot_events(events: list[dict]) -> dict:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


@pytest.mark.parametrize(
    ("now", "words", "available"),
    [
        ("2018-11-04T12:00", "pas encore ouverte", False),
        ("2018-11-30T12:00", "uniquement par SMS", True),
        ("2018-12-06T16:59", "3 fois au plus", True),
        ("2018-12-06T17:01", "n'est plus possible", False),
    ],
)
def test_the_reissue_follows_the_calendar_of_the_knowledge_base(
    monkeypatch, services, now, words, available
):
    monkeypatch.setenv("BOT_NOW", now)
    messages, events = run(ActionOfferVoterIdReissue(services), tracker("lost_voter_id"))
    assert words in said(messages)
    assert slot_events(events)["chore_available"] is available
    if available:
        assert "6 décembre 2018 à 17h (heure de Paris)" in said(messages)


def test_the_reset_waits_for_the_voter_space(monkeypatch, services):
    monkeypatch.setenv("BOT_NOW", "2018-10-01T12:00")
    messages, events = run(ActionOfferPasswordReset(services), tracker("lost_voter_password"))
    assert "pas encore ouvert" in said(messages) and "11 octobre 2018" in said(messages)
    assert slot_events(events)["chore_available"] is False
    monkeypatch.setenv("BOT_NOW", "2018-11-30T12:00")
    messages, events = run(ActionOfferPasswordReset(services), tracker("lost_voter_password"))
    assert "jamais votre mot de passe" in said(messages)
    assert slot_events(events)["chore_available"] is True


def test_a_portal_that_does_not_answer_gets_a_polite_message(monkeypatch, services, vault):
    monkeypatch.setenv("BOT_NOW", "2018-11-30T12:00")
    vault.put(
        "test-user", {"phone": "0612345678", "numen": "01E9501234ABC", "birth_date": "12/03/1980"}
    )
    messages, events = run(ActionSubmitVoterIdReissue(services), tracker("affirm", "oui"))
    assert "ne répond pas" in said(messages) and "assistance" in said(messages)
    assert slot_events(events)["reissue_phone"] is None
    assert vault.get("test-user", "numen") is None  # forgotten all the same
    vault.put("test-user", {"email": "marie.dupont@ac-lyon.fr"})
    messages, _ = run(ActionSubmitPasswordReset(services), tracker("inform", "x"))
    assert "ne répond pas" in said(messages)


def test_values_that_expired_are_asked_again(services):
    messages, events = run(ActionSubmitVoterIdReissue(services), tracker("affirm", "oui"))
    assert "expiré" in said(messages)
    assert slot_events(events)["reissue_numen"] is None


def test_a_conversation_locked_after_mismatches_is_told_when_to_retry(monkeypatch, services):
    monkeypatch.setenv("BOT_NOW", "2018-11-30T12:00")
    state = tracker("lost_voter_id", slots={"reissue_locked_until": time.time() + 600})
    messages, events = run(ActionOfferVoterIdReissue(services), state)
    assert "suspendues" in said(messages) and "10 minutes" in said(messages)
    assert slot_events(events)["chore_available"] is False


def test_correction_by_button_or_by_words(services):
    by_button = tracker("correct_value", "/correct_value", entities={"field": "numen"})
    messages, events = run(ActionCorrectValue(services), by_button)
    assert "corrigeons le NUMEN" in said(messages)
    assert slot_events(events) == {"reissue_numen": None, "reissue_confirmed": None}
    by_words = tracker("correct_value", "je me suis trompée dans ma date de naissance")
    assert slot_events(run(ActionCorrectValue(services), by_words)[1])["reissue_birth_date"] is None
    vague = tracker("correct_value", "je veux corriger")
    messages, events = run(ActionCorrectValue(services), vague)
    assert "Que faut-il corriger" in said(messages)
    assert len(messages[0]["buttons"]) == 4


def test_the_summary_shows_masked_values_and_no_asks_what_to_correct():
    summary = tracker(
        "inform",
        "DATE_MASQUEE",
        slots={
            "reissue_phone": "+33 6 •• •• •• 78",
            "reissue_numen": "••••••••••ABC",
            "reissue_birth_date": "••/••/1980",
        },
    )
    messages, _ = run(ActionAskReissueConfirmed(), summary)
    assert "+33 6 •• •• •• 78" in said(messages) and "••••••••••ABC" in said(messages)
    assert messages[0]["buttons"][0]["payload"] == "/affirm"
    messages, _ = run(ActionAskReissueConfirmed(), tracker("deny", "non"))
    assert "Que faut-il corriger" in said(messages)


def test_cancel_forgets_every_value(services, vault):
    vault.put("test-user", {"phone": "0612345678", "email": "a.b@ac-lyon.fr"})
    messages, events = run(ActionCancelChore(services), tracker("cancel", "annuler"))
    assert "rien n'a été envoyé" in said(messages)
    assert any(e.get("event") == "active_loop" and e.get("name") is None for e in events)
    assert vault.get("test-user", "phone") is None and vault.get("test-user", "email") is None


def test_the_reissue_offer_reads_its_deadline_and_limit_from_the_kb(monkeypatch, tmp_path, vault):
    from tests.conftest import KB
    from tests.test_kb_change import knowledge_from

    edited = (
        KB.read_text(encoding="utf-8")
        .replace("| 2018-11-05 | 2018-12-06 17:00 |", "| 2018-11-05 | 2018-12-07 18:00 |")
        .replace("| identifiant_demandes_max | 3 |", "| identifiant_demandes_max | 5 |")
    )
    knowledge = knowledge_from(edited, tmp_path)
    monkeypatch.setenv("BOT_NOW", "2018-12-07T12:00")
    services = ChoreServices(knowledge, vault, None)
    text = said(run(ActionOfferVoterIdReissue(services), tracker("lost_voter_id"))[0])
    assert "7 décembre 2018 à 18h" in text and "5 fois au plus" in text
    assert "6 décembre" not in text and "3 fois" not in text


class FlakyPortal(PortalClient):
    """A portal whose first answers are lost (as after a timeout); it records each key."""

    def __init__(self, lost: int) -> None:
        super().__init__(f"http://127.0.0.1:{free_port()}", "token", timeout=1.0)
        self.lost, self.keys = lost, []

    async def request_password_reset(self, email: str, idempotency_key: str) -> ResetOutcome:
        self.keys.append(idempotency_key)
        if len(self.keys) <= self.lost:
            raise PortalUnavailable("timeout")
        return ResetOutcome(ResetStatus.ACCEPTED)


def test_a_request_the_portal_did_not_answer_keeps_its_key_whatever_the_wording(
    monkeypatch, knowledge, vault
):
    """The exactly-one-e-mail guarantee rests on a slot, not on the sentence said to the voter."""
    monkeypatch.setenv("BOT_NOW", "2018-11-30T12:00")
    monkeypatch.setattr(say, "PORTAL_DOWN", "Le portail est indisponible, réessayez plus tard.")
    portal = FlakyPortal(lost=1)
    services = ChoreServices(knowledge, vault, portal)
    address = "marie.dupont@ac-lyon.fr"

    def submit(started: float, slots: dict) -> dict:
        vault.put("test-user", {"email": address})
        start = [{"event": "active_loop", "name": RESET_FORM, "timestamp": started}]
        messages, events = run(
            ActionSubmitPasswordReset(services),
            tracker("inform", "x", slots=slots, events=start),
        )
        return {"said": said(messages), **slot_events(events)}

    lost = submit(100.0, {})
    assert "indisponible" in lost["said"]
    assert lost[PENDING_SLOT] == {RESET_FORM: "100.0"}
    # Asked again in a new form with the same address: the same key, so the portal replays.
    again = submit(200.0, {PENDING_SLOT: lost[PENDING_SLOT]})
    assert portal.keys[1] == portal.keys[0]
    assert "lien" in again["said"] and again[PENDING_SLOT] is None
    # Once answered, a new request is a new one.
    submit(300.0, {})
    assert portal.keys[2] != portal.keys[0]
