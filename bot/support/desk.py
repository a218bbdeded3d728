"""The support desk as the gateway uses it: asynchronous, one place for every handoff step.

It records every turn (redacted) in `SupportStore`, opens and closes handoffs, publishes live
events for the agents' consoles, and delivers what an agent writes to the user's own channel
(Telegram and Slack register a delivery function; the web widget polls its history).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

from bot.knowledge import Knowledge
from bot.personal_data.redaction import redact
from bot.support import wording
from bot.support.events import SupportEvents
from bot.support.models import BOT, HUMAN, SYSTEM, USER, WAITING
from bot.support.store import ConversationView, HandoffView, SupportStore, TurnNlu, TurnView

logger = logging.getLogger(__name__)

# A channel's delivery: send these messages ({"text", "buttons"}) to this conversation's user.
Delivery = Callable[[ConversationView, list[dict[str, Any]]], Awaitable[None]]


def channel_of(conversation_id: str) -> str:
    """The channel a sender id belongs to (ids are prefixed by their channel)."""
    prefix = conversation_id.split("-", 1)[0]
    return {"tg": "telegram", "slack": "slack"}.get(prefix, "web")


def handoff_event(kind: str, handoff: HandoffView) -> dict[str, Any]:
    return {"type": kind, "handoff": handoff.id, "conversation": handoff.conversation_id}


class SupportDesk:
    def __init__(
        self,
        store: SupportStore,
        knowledge: Knowledge | None = None,
        events: SupportEvents | None = None,
    ) -> None:
        self.store = store
        self.events = events or SupportEvents()  # the gateway's, shared by its gateways
        self._knowledge = knowledge
        self._deliveries: dict[str, Delivery] = {}

    def register_delivery(self, channel: str, delivery: Delivery) -> None:
        self._deliveries[channel] = delivery

    # ------------------------------------------------------------------ the user's side

    async def state(self, conversation_id: str) -> str:
        return await asyncio.to_thread(self.store.state, conversation_id)

    async def record_exchange(
        self,
        conversation_id: str,
        user_text: str,
        nlu: TurnNlu | None,
        bot_messages: list[dict[str, Any]],
        address: dict[str, Any] | None = None,
    ) -> list[TurnView]:
        return await asyncio.to_thread(
            self.store.record_exchange,
            conversation_id,
            channel_of(conversation_id),
            address,
            user_text,
            nlu,
            bot_messages,
        )

    async def while_paused(
        self, conversation_id: str, state: str, user_text: str
    ) -> tuple[list[dict[str, Any]], int]:
        """A user message while a handoff is open: it goes to the agent, not to the assistant.
        Returns what the user is told (nothing once an agent is answering) and the id of the
        last stored turn."""
        if wording.wants_the_bot_back(user_text):
            handoff = await asyncio.to_thread(self.store.open_handoff_of, conversation_id)
            if handoff is not None:
                released = await asyncio.to_thread(self.store.release, handoff.id, None)
                await self.events.publish(handoff_event("released", released))
            notice = await self._record(conversation_id, SYSTEM, wording.BACK_TO_BOT)
            return [{"text": notice.text}], notice.id
        turn = await self._record(conversation_id, USER, user_text)
        await self.events.publish(
            {"type": "turn", "conversation": conversation_id, "turn": turn.id}
        )
        if state == WAITING:
            notice = {"text": wording.STILL_WAITING, "buttons": [wording.BACK_TO_BOT_BUTTON]}
            return [notice], turn.id
        return [], turn.id  # an agent is answering: their reply is the answer

    async def request_handoff(
        self, conversation_id: str, reason: str
    ) -> tuple[list[dict[str, Any]], int]:
        """Open a handoff (the assistant is paused for this conversation); return what the user
        is told (what happens next, and the assistance académique path when nobody is online)
        and the id of the stored notice."""
        handoff = await asyncio.to_thread(
            self.store.open_handoff, conversation_id, reason, channel_of(conversation_id)
        )
        online = await asyncio.to_thread(self.store.agents_online)
        text = wording.WAITING_ONLINE if online else wording.WAITING_NOBODY
        if reason == "incompris":
            text = f"{wording.MISUNDERSTOOD}\n\n{text}"
        if not online:
            path = await asyncio.to_thread(self._assistance_path)
            if path:
                text = f"{text}\n\n{path}"
        buttons = [wording.BACK_TO_BOT_BUTTON]
        notice = await asyncio.to_thread(
            self.store.record_turn,
            conversation_id,
            SYSTEM,
            text,
            channel=channel_of(conversation_id),
            buttons=buttons,
        )
        await self.events.publish(handoff_event("handoff", handoff))
        return [{"text": text, "buttons": buttons}], notice.id

    def _assistance_path(self) -> str | None:
        """The knowledge base's paragraph on the assistance académique (the answer's last)."""
        answer = self._knowledge.answer("ask_human") if self._knowledge else None
        return answer.text.split("\n\n")[-1] if answer else None

    async def history(self, conversation_id: str, after_id: int = 0) -> list[TurnView]:
        return await asyncio.to_thread(self.store.transcript, conversation_id, after_id)

    # ------------------------------------------------------------------ the agent's side

    async def take(self, handoff_id: int, agent_id: int) -> HandoffView:
        handoff = await asyncio.to_thread(self.store.take, handoff_id, agent_id)
        name = handoff.taken_by_name or "Un conseiller"
        await self._notify_user(handoff.conversation_id, wording.taken(name))
        await self.events.publish(handoff_event("taken", handoff))
        return handoff

    async def reply(self, conversation_id: str, agent_id: int, text: str) -> TurnView:
        """An agent's message: stored redacted, delivered as written to the user's channel."""
        shown = redact(text, date.today()).text
        turn = await asyncio.to_thread(
            self.store.record_turn, conversation_id, HUMAN, shown, agent_id=agent_id
        )
        await self._deliver(conversation_id, [{"text": text}])
        await self.events.publish(
            {"type": "turn", "conversation": conversation_id, "turn": turn.id}
        )
        return turn

    async def release(self, handoff_id: int, agent_id: int) -> HandoffView:
        handoff = await asyncio.to_thread(self.store.release, handoff_id, agent_id)
        await self._notify_user(handoff.conversation_id, wording.RELEASED)
        await self.events.publish(handoff_event("released", handoff))
        return handoff

    async def agents_online(self) -> int:
        return await asyncio.to_thread(self.store.agents_online)

    # ------------------------------------------------------------------ delivery

    async def _record(self, conversation_id: str, role: str, text: str) -> TurnView:
        return await asyncio.to_thread(
            self.store.record_turn,
            conversation_id,
            role,
            text,
            channel=channel_of(conversation_id),
        )

    async def _notify_user(self, conversation_id: str, text: str) -> None:
        await self._record(conversation_id, SYSTEM, text)
        await self._deliver(conversation_id, [{"text": text}])

    async def _deliver(self, conversation_id: str, messages: list[dict[str, Any]]) -> None:
        conversation = await asyncio.to_thread(self.store.conversation, conversation_id)
        if conversation is None:
            return
        delivery = self._deliveries.get(conversation.channel)
        if delivery is None:
            return  # the web widget fetches new turns itself
        try:
            await delivery(conversation, messages)
        except Exception:
            # The turn is stored: the agent sees it; the user may miss it on that channel.
            logger.exception("delivery to a %s conversation failed", conversation.channel)


__all__ = ["BOT", "SupportDesk", "channel_of"]
