"""Answers written in `kb/faq_fr.md`, the help menu and the clarification question."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.base import KnowledgeAction, latest_intent
from bot.actions.lookup import answer_message, reply_to_latest
from bot.answers import wording
from bot.answers.handoff import REASON_MISUNDERSTOOD, payload
from bot.knowledge import Knowledge

# The topics offered first in the help menu: the chores that flood the support desks.
HELP_BUTTONS = (
    "create_password",
    "lost_voter_password",
    "lost_voter_id",
    "webmail_access",
    "who_votes_where",
    "voting_dates",
)
CLARIFY_CHOICES = 2
# Below this TF-IDF similarity a knowledge-base section is not offered as an answer (measured:
# out-of-scope questions score 0.14 at the median, 0.22 at the 90th percentile).
SEARCH_MIN_SCORE = 0.3
IGNORED_EVENTS = {"action_listen", "action_session_start", "action_extract_slots"}
# After this many unanswered messages in a row (a clarification, or "not my topic"), the next
# one goes to a human.
UNANSWERED_BEFORE_HANDOFF = 2
UNANSWERED_ACTIONS = {"action_clarify", "action_out_of_scope"}


class ActionAnswerFaq(KnowledgeAction):
    """Answer the knowledge-base section whose key is the intent, with its calendar status."""

    def name(self) -> str:
        return "action_answer_faq"

    def answer(
        self, knowledge: Knowledge, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> list[dict[str, Any]]:
        return answer_message(knowledge, dispatcher, tracker, latest_intent(tracker) or "")


class ActionHelp(KnowledgeAction):
    """What the assistant can answer: every knowledge-base topic, the main ones as buttons."""

    def name(self) -> str:
        return "action_help"

    def answer(
        self, knowledge: Knowledge, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> list[dict[str, Any]]:
        send_help(knowledge, dispatcher, "Je peux vous aider sur ces sujets :")
        return []


def send_help(knowledge: Knowledge, dispatcher: CollectingDispatcher, intro: str) -> None:
    titles = knowledge.answer_titles()
    lines = [intro] + [f"- {title}" for _, title in titles]
    lines.append(
        "Pour une situation personnelle que je ne peux pas régler, contactez l'assistance "
        "académique de votre académie."
    )
    by_key = dict(titles)
    buttons = [wording.intent_button(by_key[k], k) for k in HELP_BUTTONS if k in by_key]
    dispatcher.utter_message(text="\n".join(lines), buttons=buttons)


class ActionClarify(KnowledgeAction):
    """Unsure what was asked: offer the two most likely topics; the second time, the menu."""

    def name(self) -> str:
        return "action_clarify"

    def answer(
        self, knowledge: Knowledge, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> list[dict[str, Any]]:
        text = (tracker.latest_message or {}).get("text") or ""
        if not any(char.isalpha() for char in text):
            send_help(
                knowledge,
                dispatcher,
                "Je n'ai pas trouvé de question dans votre message. Écrivez-la en quelques mots, "
                "ou choisissez un sujet :",
            )
            return []
        if unanswered_in_a_row(tracker) >= UNANSWERED_BEFORE_HANDOFF:
            dispatcher.utter_message(json_message=payload(REASON_MISUNDERSTOOD))
            return []
        if _previous_action(tracker) == self.name():
            send_help(
                knowledge,
                dispatcher,
                "Je n'ai toujours pas compris, désolé. Voici les sujets sur lesquels je peux "
                "vous aider :",
            )
            return []
        titles = dict(knowledge.answer_titles())
        ranking = (tracker.latest_message or {}).get("intent_ranking") or []
        likely = [r["name"] for r in ranking if r.get("name") in titles][:CLARIFY_CHOICES]
        hits = [h for h in knowledge.search_answers(text, 1) if h.score >= SEARCH_MIN_SCORE]
        events: list[dict[str, Any]] = []
        if hits:
            best = hits[0].key
            likely = [k for k in likely if k != best][: CLARIFY_CHOICES - 1]
            # The section's answer for what the message names (« accompagnante… mes scrutins »
            # gets the AESH's scrutins), as the topic itself would have given it.
            closest = reply_to_latest(knowledge, tracker, best)
            body = closest.text or knowledge.answer(best).text
            dispatcher.utter_message(
                text="Je ne suis pas certain d'avoir compris votre question ; voici la réponse qui "
                f"s'en rapproche le plus (« {knowledge.answer(best).title} ») :\n\n{body}",
                buttons=list(closest.buttons),
            )
            events = [SlotSet(slot, value) for slot, value in closest.remembered.items()]
        elif not likely:
            send_help(knowledge, dispatcher, "Je n'ai pas compris. Je peux vous aider sur :")
            return []
        buttons = [wording.intent_button(titles[k], k) for k in likely]
        buttons.append(wording.intent_button("Autre chose", "help"))
        dispatcher.utter_message(
            text=(
                "Si ce n'est pas votre question, choisissez un sujet :"
                if hits
                else "Je ne suis pas sûr d'avoir compris. Votre question porte-t-elle sur l'un "
                "de ces sujets ?"
            ),
            buttons=buttons,
        )
        return events


class ActionOutOfScope(Action):
    """« Je n'ai pas cette information » (the `utter_out_of_scope` response); the third time in
    a row the assistant cannot answer, the conversation goes to a human instead."""

    def name(self) -> str:
        return "action_out_of_scope"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        dispatcher.utter_message(response="utter_out_of_scope")
        if unanswered_in_a_row(tracker) >= UNANSWERED_BEFORE_HANDOFF:
            dispatcher.utter_message(json_message=payload(REASON_MISUNDERSTOOD))
        return []


def unanswered_in_a_row(tracker: Tracker) -> int:
    """How many of the user's previous messages in a row the assistant could not answer
    (it asked to clarify, or said it was not its topic)."""
    count = 0
    answer: str | None = None  # the first action after the user message being looked at
    seen_current = False
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "action" and event.get("name") == "action_session_start":
            break
        if kind == "action" and event.get("name") not in IGNORED_EVENTS:
            answer = event.get("name")
        elif kind == "user":
            if seen_current:
                if answer not in UNANSWERED_ACTIONS:
                    break
                count += 1
            seen_current = True
            answer = None
    return count


def _previous_action(tracker: Tracker) -> str | None:
    """The last action the assistant ran before the current user message."""
    seen_user = False
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            if seen_user:
                continue
            seen_user = True
        elif seen_user and event.get("event") == "action":
            if event.get("name") not in IGNORED_EVENTS:
                return event.get("name")
            if event.get("name") == "action_session_start":
                return None
    return None
