"""The actions whose answer depends on an académie, a staff category or a scrutin named by the
user. They adapt the tracker to `bot.answers.reply`, which decides and words the answer."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.base import KnowledgeAction
from bot.answers import Reply, local_now, reply
from bot.answers.replies import INFORM, REMEMBERED, WEBMAIL, WHO_VOTES
from bot.knowledge import Knowledge


def answer_message(
    knowledge: Knowledge, dispatcher: CollectingDispatcher, tracker: Tracker, intent: str
) -> list[dict[str, Any]]:
    """Say `reply`'s answer to the latest message taken as `intent`; remember what it says."""
    return send(dispatcher, reply_to_latest(knowledge, tracker, intent))


def reply_to_latest(knowledge: Knowledge, tracker: Tracker, intent: str) -> Reply:
    """`reply`'s answer to the latest message taken as `intent`, with what the voter said
    before (`REMEMBERED` slots)."""
    message = tracker.latest_message or {}
    return reply(
        knowledge,
        intent,
        message.get("entities") or [],
        local_now(knowledge),
        remembered={slot: tracker.get_slot(slot) for slot in REMEMBERED},
        text=message.get("text") or "",
    )


def send(dispatcher: CollectingDispatcher, answer: Reply) -> list[dict[str, Any]]:
    if answer.text is None:
        dispatcher.utter_message(response=answer.response)
    else:
        dispatcher.utter_message(text=answer.text, buttons=list(answer.buttons))
    return [SlotSet(slot, value) for slot, value in answer.remembered.items()]


class ActionWebmail(KnowledgeAction):
    """The webmail of the user's académie: named now, remembered, or asked with buttons."""

    def name(self) -> str:
        return "action_webmail"

    def answer(
        self, knowledge: Knowledge, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> list[dict[str, Any]]:
        return answer_message(knowledge, dispatcher, tracker, WEBMAIL)


class ActionWhoVotes(KnowledgeAction):
    """Who votes where: a category's scrutins, or a scrutin's voters, or ask the category."""

    def name(self) -> str:
        return "action_who_votes"

    def answer(
        self, knowledge: Knowledge, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> list[dict[str, Any]]:
        return answer_message(knowledge, dispatcher, tracker, WHO_VOTES)


class ActionHandleInform(KnowledgeAction):
    """A bare "Lyon", "je suis AESH", "et la CAPD ?": answer about what was named."""

    def name(self) -> str:
        return "action_handle_inform"

    def answer(
        self, knowledge: Knowledge, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> list[dict[str, Any]]:
        return answer_message(knowledge, dispatcher, tracker, INFORM)
