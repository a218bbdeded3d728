"""What every action of this assistant shares: the knowledge base, the clock, error handling."""

from __future__ import annotations

import abc
import asyncio
import logging
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.answers import local_now
from bot.knowledge import Knowledge, default_knowledge

logger = logging.getLogger(__name__)

__all__ = ["KnowledgeAction", "latest_entity", "latest_intent", "local_now"]


class KnowledgeAction(Action, abc.ABC):
    """An action that answers from the knowledge base.

    Subclasses implement `answer` (synchronous, run in a worker thread so database I/O never
    blocks the action server's event loop). Any failure of ours gets a log line without the
    user's text and a polite French message.
    """

    def __init__(self, knowledge: Knowledge | None = None) -> None:
        self._knowledge = knowledge  # None: the process-wide one, from the environment

    @abc.abstractmethod
    def name(self) -> str:
        """The action's name in domain.yml."""

    @abc.abstractmethod
    def answer(
        self, knowledge: Knowledge, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> list[dict[str, Any]]:
        """Utter the answer through `dispatcher`; return the events to apply."""

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        try:
            return await asyncio.to_thread(self._answer, dispatcher, tracker)
        except Exception:
            logger.exception("action %s failed (intent %s)", self.name(), latest_intent(tracker))
            dispatcher.utter_message(response="utter_service_error")
            return []

    def _answer(self, dispatcher: CollectingDispatcher, tracker: Tracker) -> list[dict[str, Any]]:
        return self.answer(self._knowledge or default_knowledge(), dispatcher, tracker)


def latest_intent(tracker: Tracker) -> str | None:
    return (tracker.latest_message or {}).get("intent", {}).get("name")


def latest_entity(tracker: Tracker, entity: str) -> str | None:
    """The entity of this turn's message (the slot may hold an older value)."""
    return next(tracker.get_latest_entity_values(entity), None)
