"""The two account chores as Rasa forms: voter-password reset and voter-ID reissue by SMS.

Personal values never reach Rasa: the gateway replaces them by placeholders and keeps them in
the encrypted vault (`bot.personal_data`). These actions read them back from the vault to
validate and send them, store only masked forms in slots, and forget them when the request is
sent or cancelled.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import logging
import time
from datetime import date
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.base import latest_entity, latest_intent, local_now
from bot.answers import chore_wording as say
from bot.knowledge import Knowledge, default_knowledge
from bot.knowledge.store import Period
from bot.knowledge.topics import side_questions
from bot.personal_data import parsing
from bot.personal_data.redaction import EMAIL_LOCAL_PLACEHOLDER, PLACEHOLDERS
from bot.personal_data.vault import Vault, default_vault
from bot.portal.client import PortalClient, PortalUnavailable, ReissueStatus, ResetStatus

logger = logging.getLogger(__name__)

RESET_FORM = "password_reset_form"
REISSUE_FORM = "voter_id_reissue_form"
REISSUE_SLOTS = {
    "reissue_phone": "phone",
    "reissue_numen": "numen",
    "reissue_birth_date": "birth_date",
}
CHORE_SLOTS = (*REISSUE_SLOTS, "reissue_confirmed", "reset_email", "chore_failures")
# Messages that are not an answer to the form's question: handled by the rules of
# data/rules/chores.yml (answer, then the form asks again). Side questions count only when the
# classifier is sure and the message holds no value: "bof" typed for a phone number is an answer
# to check, even if the classifier thinks it is small talk.
INTERRUPTIONS = {"cancel", "correct_value", "password_shared", "goodbye"}
SIDE_QUESTIONS = side_questions()  # every topic of kb/faq_fr.md, and small talk
SIDE_QUESTION_CONFIDENCE = 0.8
YES_WORDS = {"ok", "okay", "oki", "oui", "ouais", "yes", "d'accord", "daccord", "go"}
FAILURES_BEFORE_WAY_OUT = 3
# Brute force, per conversation (the portal also locks per NUMEN).
MISMATCHES_BEFORE_LOCK = 3
LOCK_MINUTES = 30


class ChoreServices:
    """What the chore actions use; injectable for tests (defaults: from the environment)."""

    def __init__(
        self,
        knowledge: Knowledge | None = None,
        vault: Vault | None = None,
        portal: PortalClient | None = None,
    ) -> None:
        self._knowledge, self._vault, self._portal = knowledge, vault, portal

    @property
    def knowledge(self) -> Knowledge:
        return self._knowledge or default_knowledge()

    @property
    def vault(self) -> Vault:
        return self._vault or default_vault()

    @property
    def portal(self) -> PortalClient:
        return self._portal or PortalClient.from_env()

    def rules(self) -> dict[str, str]:
        keys = ("numen_longueur", "numen_forme", "format_adresse_pro", "identifiant_demandes_max")
        return {key: self.knowledge.rule(key) for key in keys}

    def domains(self) -> list[str]:
        return [f"{a.domain}.fr" for a in self.knowledge.academies()]


class ChoreAction(Action, abc.ABC):
    """Base of the chore actions: services, and a polite answer when something of ours fails."""

    def __init__(self, services: ChoreServices | None = None) -> None:
        self.services = services or ChoreServices()

    @abc.abstractmethod
    def name(self) -> str:
        """The action's name in domain.yml."""

    @abc.abstractmethod
    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict]:
        """Do the work; return events."""

    async def calendar(self, event: str, rule: str) -> tuple[Period, str, str]:
        """The calendar event `event`, where the clock stands in it, and the KB rule `rule`."""
        knowledge = self.services.knowledge
        return await asyncio.to_thread(
            lambda: (knowledge.period(event), knowledge.period_status(event), knowledge.rule(rule))
        )

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        try:
            return await self.act(dispatcher, tracker)
        except Exception:
            logger.exception("action %s failed (intent %s)", self.name(), latest_intent(tracker))
            dispatcher.utter_message(response="utter_service_error")
            return [ActiveLoop(None), *clear_chore_slots()]


def clear_chore_slots() -> list[dict]:
    return [SlotSet(slot, None) for slot in CHORE_SLOTS] + [SlotSet("requested_slot", None)]


def latest_text(tracker: Tracker) -> str:
    return (tracker.latest_message or {}).get("text") or ""


def holds_a_value(text: str) -> bool:
    return any(p in text for p in PLACEHOLDERS.values()) or f"{EMAIL_LOCAL_PLACEHOLDER}@" in text


def not_an_answer(tracker: Tracker) -> bool:
    """The latest message is a side path (cancel, correct, a sure side question), not a value."""
    intent = (tracker.latest_message or {}).get("intent") or {}
    if intent.get("name") in INTERRUPTIONS:
        return True
    return (
        intent.get("name") in SIDE_QUESTIONS
        and (intent.get("confidence") or 0) >= SIDE_QUESTION_CONFIDENCE
        and not holds_a_value(latest_text(tracker))
    )


# The requests the portal did not answer, by form: {form: when that request's form started}.
PENDING_SLOT = "chore_pending"


def pending_requests(tracker: Tracker) -> dict[str, str]:
    pending = tracker.get_slot(PENDING_SLOT)
    return dict(pending) if isinstance(pending, dict) else {}


def request_start(tracker: Tracker, form: str) -> str:
    """When the request being sent began: the start of the form, or the start of an earlier
    request of this form that the portal did not answer."""
    pending = pending_requests(tracker).get(form)
    if pending:
        return pending
    starts = [
        str(event.get("timestamp"))
        for event in tracker.events
        if event.get("event") == "active_loop" and event.get("name") == form
    ]
    return starts[-1] if starts else ""


def idempotency_key(tracker: Tracker, form: str, started: str, *values: str) -> str:
    """One key per request: the same request sent twice (a retry, a double click) is sent once.

    A request the portal did not answer (timeout, error) may still have been carried out: it
    stays pending (`still_pending`), and when the voter then asks again with the same `values`
    the request keeps that earlier `started`, so the portal replays what it did instead of
    sending a second SMS."""
    request = "|".join(hashlib.sha256(v.encode()).hexdigest() for v in values)
    return hashlib.sha256(f"{tracker.sender_id}|{form}|{started}|{request}".encode()).hexdigest()


def still_pending(tracker: Tracker, form: str, started: str) -> dict[str, Any]:
    """The event that keeps an unanswered request of `form` pending."""
    return SlotSet(PENDING_SLOT, {**pending_requests(tracker), form: started})


def answered(tracker: Tracker, form: str) -> list[dict[str, Any]]:
    """The events that close the pending request of `form`, once the portal answered one."""
    pending = pending_requests(tracker)
    if form not in pending:
        return []
    del pending[form]
    return [SlotSet(PENDING_SLOT, pending or None)]


def minutes_until(deadline: float) -> int:
    return max(1, int((deadline - time.time() + 59) // 60))


# --- Starting a chore -------------------------------------------------------------------------


class ActionOfferVoterIdReissue(ChoreAction):
    """Explain the reissue (SMS only, limit, deadline) and start the form, if it is possible."""

    def name(self) -> str:
        return "action_offer_voter_id_reissue"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict]:
        period, status, max_requests = await self.calendar(
            "nouvel_identifiant", "identifiant_demandes_max"
        )
        locked_until = tracker.get_slot("reissue_locked_until") or 0
        if status == "before":
            dispatcher.utter_message(text=say.reissue_not_open(period))
        elif status == "closed":
            dispatcher.utter_message(text=say.reissue_closed(period))
        elif locked_until > time.time():
            dispatcher.utter_message(text=say.locked(minutes_until(locked_until)))
        else:
            dispatcher.utter_message(text=say.reissue_offer(max_requests, period))
            return [SlotSet("chore_available", True), *clear_chore_slots()]
        return [SlotSet("chore_available", False)]


class ActionOfferPasswordReset(ChoreAction):
    """Explain the reset and start the form, once the voter space is open."""

    def name(self) -> str:
        return "action_offer_password_reset"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict]:
        period, status, portal_url = await self.calendar("espace_electeur", "portail_url")
        if status == "before":
            dispatcher.utter_message(text=say.reset_not_open(period))
            return [SlotSet("chore_available", False)]
        dispatcher.utter_message(text=say.reset_offer(portal_url))
        return [SlotSet("chore_available", True), *clear_chore_slots()]


# --- Filling the forms ------------------------------------------------------------------------


class ChoreFormValidation(FormValidationAction, abc.ABC):
    """Values come from the vault when the message holds their placeholder; anything else
    typed in answer to the question is checked too, so the voter hears what is wrong."""

    def __init__(self, services: ChoreServices | None = None) -> None:
        self.services = services or ChoreServices()

    @abc.abstractmethod
    def name(self) -> str:
        """The validation action's name: `validate_<form>`."""

    def answer_for(self, tracker: Tracker, slot: str, placeholder: str) -> str | None:
        """What the latest message says for `slot`: its placeholder, raw text, or nothing."""
        text = latest_text(tracker)
        if placeholder in text:
            return placeholder
        answering = tracker.get_slot("requested_slot") == slot
        if answering and text and not text.startswith("/") and not not_an_answer(tracker):
            # Another kind of value (a NUMEN typed for the phone) is used by its own slot.
            return None if holds_a_value(text) else text
        return None

    async def value_of(self, tracker: Tracker, kind: str, answer: str, placeholder: str) -> str:
        if answer != placeholder:
            return answer
        stored = await asyncio.to_thread(self.services.vault.get, tracker.sender_id, kind)
        return stored or ""

    def rejected(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, slot: str, text: str
    ) -> dict[str, Any]:
        failures = int(tracker.get_slot("chore_failures") or 0) + 1
        if failures >= FAILURES_BEFORE_WAY_OUT:
            text += "\n" + say.WAY_OUT
        dispatcher.utter_message(text=text)
        return {slot: None, "chore_failures": float(failures)}


class ValidateVoterIdReissueForm(ChoreFormValidation):
    def name(self) -> str:
        return f"validate_{REISSUE_FORM}"

    async def extract_reissue_phone(self, dispatcher, tracker, domain) -> dict[str, Any]:
        return self._extract(tracker, "reissue_phone")

    async def extract_reissue_numen(self, dispatcher, tracker, domain) -> dict[str, Any]:
        return self._extract(tracker, "reissue_numen")

    async def extract_reissue_birth_date(self, dispatcher, tracker, domain) -> dict[str, Any]:
        return self._extract(tracker, "reissue_birth_date")

    def _extract(self, tracker: Tracker, slot: str) -> dict[str, Any]:
        answer = self.answer_for(tracker, slot, PLACEHOLDERS[REISSUE_SLOTS[slot]])
        return {} if answer is None else {slot: answer}

    async def extract_reissue_confirmed(self, dispatcher, tracker, domain) -> dict[str, Any]:
        if tracker.get_slot("requested_slot") != "reissue_confirmed":
            return {}
        intent = latest_intent(tracker)
        if not_an_answer(tracker) or holds_a_value(latest_text(tracker)):
            return {}
        if intent == "affirm" or parsing.fold(latest_text(tracker)).strip(" !.") in YES_WORDS:
            return {"reissue_confirmed": True}
        return {"reissue_confirmed": False}

    async def validate_reissue_phone(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        return await self._validate(
            dispatcher, tracker, "reissue_phone", value, parsing.parse_phone
        )

    async def validate_reissue_numen(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        return await self._validate(
            dispatcher, tracker, "reissue_numen", value, parsing.parse_numen
        )

    async def validate_reissue_birth_date(
        self, value, dispatcher, tracker, domain
    ) -> dict[str, Any]:
        today = await asyncio.to_thread(lambda: local_now(self.services.knowledge).date())
        return await self._validate(
            dispatcher, tracker, "reissue_birth_date", value,
            lambda text: parsing.parse_birth_date(text, today),
        )  # fmt: skip

    async def validate_reissue_confirmed(
        self, value, dispatcher, tracker, domain
    ) -> dict[str, Any]:
        # "No" asks what to correct (action_ask_reissue_confirmed words it).
        return {"reissue_confirmed": True if value is True else None}

    async def _validate(self, dispatcher, tracker, slot, value, parse) -> dict[str, Any]:
        if value is None:
            return {}
        kind = REISSUE_SLOTS[slot]
        raw = await self.value_of(tracker, kind, value, PLACEHOLDERS[kind])
        parsed = parse(raw)
        if parsed.ok:
            return {slot: parsed.masked, "reissue_confirmed": None, "chore_failures": 0.0}
        rules = await asyncio.to_thread(self.services.rules)
        return self.rejected(dispatcher, tracker, slot, say.problem(parsed, rules))


class ActionAskReissueConfirmed(Action):
    """The masked summary and the confirmation buttons, or what to correct after a "no"."""

    def name(self) -> str:
        return "action_ask_reissue_confirmed"

    async def run(self, dispatcher, tracker, domain) -> list[dict[str, Any]]:
        if latest_intent(tracker) == "deny" or tracker.get_slot("reissue_confirmed") is False:
            text, buttons = say.what_to_correct()
        else:
            text, buttons = say.reissue_summary(
                tracker.get_slot("reissue_phone"),
                tracker.get_slot("reissue_numen"),
                tracker.get_slot("reissue_birth_date"),
            )
        dispatcher.utter_message(text=text, buttons=buttons)
        return []


class ValidatePasswordResetForm(ChoreFormValidation):
    def name(self) -> str:
        return f"validate_{RESET_FORM}"

    async def extract_reset_email(self, dispatcher, tracker, domain) -> dict[str, Any]:
        text = latest_text(tracker)
        if f"{EMAIL_LOCAL_PLACEHOLDER}@" in text:
            return {"reset_email": EMAIL_LOCAL_PLACEHOLDER}
        answer = self.answer_for(tracker, "reset_email", EMAIL_LOCAL_PLACEHOLDER)
        return {} if answer is None else {"reset_email": answer}

    async def validate_reset_email(self, value, dispatcher, tracker, domain) -> dict[str, Any]:
        if value is None:
            return {}
        raw = await self.value_of(tracker, "email", value, EMAIL_LOCAL_PLACEHOLDER)
        domains = await asyncio.to_thread(self.services.domains)
        parsed = parsing.parse_pro_email(raw, domains)
        if parsed.ok:
            return {"reset_email": parsed.masked, "chore_failures": 0.0}
        rules = await asyncio.to_thread(self.services.rules)
        return self.rejected(dispatcher, tracker, "reset_email", say.problem(parsed, rules))


# --- Side paths: correct, cancel ---------------------------------------------------------------

FIELD_WORDS = {
    "phone": ("telephone", "portable", "numero", "tel", "mobile", "06", "07"),
    "numen": ("numen",),
    "birth_date": ("date", "naissance", "ne le", "nee le", "anniversaire"),
    "email": ("mail", "adresse", "courriel", "@"),
}
FIELD_SLOTS = {
    "phone": "reissue_phone",
    "numen": "reissue_numen",
    "birth_date": "reissue_birth_date",
}


class ActionCorrectValue(ChoreAction):
    """Forget the value the voter wants to correct; the form asks it again."""

    def name(self) -> str:
        return "action_correct_value"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict]:
        if tracker.active_loop_name == RESET_FORM:
            dispatcher.utter_message(text="D'accord, reprenons l'adresse e-mail.")
            return [SlotSet("reset_email", None)]
        field = latest_entity(tracker, "field")
        if field not in FIELD_SLOTS:
            folded = parsing.fold(latest_text(tracker))
            field = next(
                (
                    f
                    for f, words in FIELD_WORDS.items()
                    if f in FIELD_SLOTS and any(w in folded for w in words)
                ),
                None,
            )
        if field is None:
            text, buttons = say.what_to_correct()
            dispatcher.utter_message(text=text, buttons=buttons)
            return [SlotSet("reissue_confirmed", None)]
        dispatcher.utter_message(text=f"D'accord, corrigeons {say.FIELD_NAMES[field]}.")
        return [SlotSet(FIELD_SLOTS[field], None), SlotSet("reissue_confirmed", None)]


class ActionCancelChore(ChoreAction):
    """Stop the current chore, forget what was typed."""

    def name(self) -> str:
        return "action_cancel_chore"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict]:
        await asyncio.to_thread(self.services.vault.forget, tracker.sender_id)
        dispatcher.utter_message(text=say.CANCELLED)
        return [ActiveLoop(None), *clear_chore_slots()]


# --- Sending ----------------------------------------------------------------------------------


class ActionSubmitVoterIdReissue(ChoreAction):
    def name(self) -> str:
        return "action_submit_voter_id_reissue"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict]:
        sender = tracker.sender_id
        vault = self.services.vault
        knowledge = self.services.knowledge
        stored = await asyncio.to_thread(
            lambda: {kind: vault.get(sender, kind) for kind in REISSUE_SLOTS.values()}
        )
        today = await asyncio.to_thread(lambda: local_now(knowledge).date())
        phone = parsing.parse_phone(stored["phone"] or "")
        numen = parsing.parse_numen(stored["numen"] or "")
        born = parsing.parse_birth_date(stored["birth_date"] or "", today)
        events = clear_chore_slots()
        if not (phone.ok and numen.ok and born.ok):
            dispatcher.utter_message(text=say.EXPIRED)
            return events
        started = request_start(tracker, REISSUE_FORM)
        key = idempotency_key(tracker, REISSUE_FORM, started, numen.value, born.value, phone.value)
        try:
            outcome = await self.services.portal.request_voter_id_reissue(
                numen.value, date.fromisoformat(born.value), phone.value, key
            )
        except PortalUnavailable:
            logger.warning("portal unavailable for a voter-ID reissue")
            dispatcher.utter_message(text=say.PORTAL_DOWN)
            return [*events, still_pending(tracker, REISSUE_FORM, started)]
        finally:
            await asyncio.to_thread(vault.forget, sender)
        logger.info("voter-ID reissue: %s", outcome.status.value)
        events += answered(tracker, REISSUE_FORM)
        max_requests = await asyncio.to_thread(knowledge.rule, "identifiant_demandes_max")
        if outcome.status == ReissueStatus.SENT:
            dispatcher.utter_message(
                text=say.reissue_sent(phone.masked, outcome.masked_email, outcome.remaining)
            )
            return [*events, SlotSet("verification_failures", 0.0)]
        if outcome.status == ReissueStatus.MISMATCH:
            failures = int(tracker.get_slot("verification_failures") or 0) + 1
            events.append(SlotSet("verification_failures", float(failures)))
            if failures >= MISMATCHES_BEFORE_LOCK:
                until = time.time() + LOCK_MINUTES * 60
                dispatcher.utter_message(text=say.locked(LOCK_MINUTES))
                return [*events, SlotSet("reissue_locked_until", until)]
            dispatcher.utter_message(text=say.MISMATCH)
        elif outcome.status == ReissueStatus.LIMIT_REACHED:
            dispatcher.utter_message(text=say.limit_reached(max_requests))
        elif outcome.status == ReissueStatus.LOCKED:
            dispatcher.utter_message(text=say.locked(max(1, (outcome.retry_after or 60) // 60)))
        else:  # deadline passed or not open: the portal's calendar decides
            period = await asyncio.to_thread(knowledge.period, "nouvel_identifiant")
            if outcome.status == ReissueStatus.NOT_OPEN:
                dispatcher.utter_message(text=say.reissue_not_open(period))
            else:
                dispatcher.utter_message(text=say.reissue_closed(period))
        return events


class ActionSubmitPasswordReset(ChoreAction):
    def name(self) -> str:
        return "action_submit_password_reset"

    async def act(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict]:
        sender = tracker.sender_id
        stored = await asyncio.to_thread(self.services.vault.get, sender, "email")
        domains = await asyncio.to_thread(self.services.domains)
        email = parsing.parse_pro_email(stored or "", domains)
        events = clear_chore_slots()
        if not email.ok:
            dispatcher.utter_message(text=say.EXPIRED)
            return events
        started = request_start(tracker, RESET_FORM)
        try:
            outcome = await self.services.portal.request_password_reset(
                email.value, idempotency_key(tracker, RESET_FORM, started, email.value)
            )
        except PortalUnavailable:
            logger.warning("portal unavailable for a password reset")
            dispatcher.utter_message(text=say.PORTAL_DOWN)
            return [*events, still_pending(tracker, RESET_FORM, started)]
        finally:
            await asyncio.to_thread(self.services.vault.forget, sender)
        logger.info("password reset: %s", outcome.status.value)
        events += answered(tracker, RESET_FORM)
        if outcome.status == ResetStatus.RATE_LIMITED:
            dispatcher.utter_message(
                text=say.reset_rate_limited(
                    minutes_until(time.time() + (outcome.retry_after or 3600))
                )
            )
            return events
        academie = await asyncio.to_thread(self._academie_of, email.value)
        dispatcher.utter_message(
            text=say.reset_accepted(email.masked, academie.webmail_host if academie else None)
        )
        return events

    def _academie_of(self, address: str):
        domain = address.rpartition("@")[2].removesuffix(".fr")
        return next((a for a in self.services.knowledge.academies() if a.domain == domain), None)
