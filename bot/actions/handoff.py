"""Handing the conversation to a human agent.

The action only asks: it sends the custom payload of `bot.answers.handoff`, which the gateway
turns into a handoff request (queue, pause of the assistant, what the user is told). A chore in
progress is abandoned and what the user typed for it is forgotten.
"""

from __future__ import annotations

import asyncio
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.chores import clear_chore_slots
from bot.answers.handoff import REASON_ASKED, payload
from bot.personal_data.vault import Vault, default_vault


class ActionRequestHuman(Action):
    def __init__(self, vault: Vault | None = None) -> None:
        self._vault = vault  # None: the process-wide one

    def name(self) -> str:
        return "action_request_human"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        dispatcher.utter_message(json_message=payload(REASON_ASKED))
        if not (tracker.active_loop or {}).get("name"):
            return []
        await asyncio.to_thread((self._vault or default_vault()).forget, tracker.sender_id)
        return [ActiveLoop(None), *clear_chore_slots()]
