"""The support desk's records: every conversation's turns, its state, and its handoffs.

Synchronous SQLAlchemy, one short transaction per call; the gateway calls it from a worker
thread (`SupportDesk`). Texts arrive already redacted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.support import models
from bot.support.models import AGENT, BOT, HUMAN, USER, WAITING, utcnow

# An agent counts as online when the console was active this recently.
ONLINE_WINDOW = timedelta(minutes=2)
TRANSCRIPT_LIMIT = 500


class HandoffConflict(Exception):
    """The handoff is no longer in the state the agent saw (taken by another, or closed)."""


@dataclass(frozen=True)
class TurnNlu:
    """What the NLU made of a user turn."""

    intent: str | None
    confidence: float | None


@dataclass(frozen=True)
class TurnView:
    id: int
    at: datetime
    role: str
    text: str
    buttons: list[dict[str, str]] = field(default_factory=list)
    intent: str | None = None
    confidence: float | None = None
    agent: str | None = None  # display name of the agent who wrote it

    def as_message(self) -> dict[str, Any]:
        """The shape the widget's history uses."""
        message: dict[str, Any] = {"id": self.id, "sender": self.role, "text": self.text}
        if self.buttons:
            message["buttons"] = self.buttons
        if self.agent:
            message["agent"] = self.agent
        return message


@dataclass(frozen=True)
class ConversationView:
    id: str
    channel: str
    address: dict[str, Any]
    state: str
    agent_id: int | None
    started_at: datetime
    last_at: datetime


@dataclass(frozen=True)
class HandoffView:
    id: int
    conversation_id: str
    reason: str
    channel: str
    created_at: datetime
    taken_at: datetime | None
    taken_by: int | None
    taken_by_name: str | None
    closed_at: datetime | None
    last_user_text: str
    last_intent: str | None
    turns: int

    @property
    def state(self) -> str:
        if self.closed_at is not None:
            return "closed"
        return AGENT if self.taken_at is not None else WAITING


class SupportStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _session(self) -> Session:
        return Session(self.engine, future=True, expire_on_commit=False)

    # ------------------------------------------------------------------ conversations and turns

    def ensure_conversation(
        self, conversation_id: str, channel: str, address: dict[str, Any] | None = None
    ) -> None:
        with self._session() as session, session.begin():
            self._conversation(session, conversation_id, channel, address)

    def _conversation(
        self,
        session: Session,
        conversation_id: str,
        channel: str,
        address: dict[str, Any] | None,
    ) -> models.Conversation:
        row = session.get(models.Conversation, conversation_id)
        if row is None:
            row = models.Conversation(id=conversation_id, channel=channel, state=BOT)
            session.add(row)
        if address:
            row.address = json.dumps(address, sort_keys=True)
        row.last_at = utcnow()
        return row

    def record_exchange(
        self,
        conversation_id: str,
        channel: str,
        address: dict[str, Any] | None,
        user_text: str,
        nlu: TurnNlu | None,
        bot_messages: list[dict[str, Any]],
    ) -> list[TurnView]:
        """Store a user turn and the assistant's answers; return them with their ids."""
        with self._session() as session, session.begin():
            self._conversation(session, conversation_id, channel, address)
            rows = [
                models.Turn(
                    conversation_id=conversation_id,
                    role=USER,
                    text=user_text,
                    intent=nlu.intent if nlu else None,
                    confidence=nlu.confidence if nlu else None,
                )
            ]
            for message in bot_messages:
                rows.append(
                    models.Turn(
                        conversation_id=conversation_id,
                        role=models.ASSISTANT,
                        text=message.get("text", ""),
                        buttons=json.dumps(message["buttons"]) if message.get("buttons") else None,
                    )
                )
            session.add_all(rows)
            session.flush()
            return [_turn_view(row, None) for row in rows]

    def record_turn(
        self,
        conversation_id: str,
        role: str,
        text: str,
        *,
        agent_id: int | None = None,
        channel: str | None = None,
        buttons: list[dict[str, str]] | None = None,
    ) -> TurnView:
        """Store one turn (a user message while paused, an agent reply, a system notice)."""
        with self._session() as session, session.begin():
            conversation = session.get(models.Conversation, conversation_id)
            if conversation is None:
                conversation = self._conversation(session, conversation_id, channel or "web", None)
            conversation.last_at = utcnow()
            row = models.Turn(
                conversation_id=conversation_id,
                role=role,
                text=text,
                agent_id=agent_id,
                buttons=json.dumps(buttons) if buttons else None,
            )
            session.add(row)
            session.flush()
            name = session.get(models.Agent, agent_id).display_name if agent_id else None
            return _turn_view(row, name)

    def conversation(self, conversation_id: str) -> ConversationView | None:
        with self._session() as session:
            row = session.get(models.Conversation, conversation_id)
            return _conversation_view(row) if row else None

    def state(self, conversation_id: str) -> str:
        """`bot`, `waiting` (a handoff waits for an agent) or `agent` (an agent answers)."""
        with self._session() as session:
            state = session.scalar(
                select(models.Conversation.state).where(models.Conversation.id == conversation_id)
            )
            return state or BOT

    def transcript(
        self, conversation_id: str, after_id: int = 0, limit: int = TRANSCRIPT_LIMIT
    ) -> list[TurnView]:
        """The last `limit` turns after `after_id`, oldest first."""
        with self._session() as session:
            rows = session.execute(
                select(models.Turn, models.Agent.display_name)
                .outerjoin(models.Agent, models.Agent.id == models.Turn.agent_id)
                .where(models.Turn.conversation_id == conversation_id, models.Turn.id > after_id)
                .order_by(models.Turn.id.desc())
                .limit(limit)
            ).all()
            return [_turn_view(turn, name) for turn, name in reversed(rows)]

    # ------------------------------------------------------------------ handoffs

    def open_handoff(self, conversation_id: str, reason: str, channel: str) -> HandoffView:
        """Put the conversation in the queue (or return its open handoff); pauses the bot."""
        with self._session() as session, session.begin():
            conversation = self._conversation(session, conversation_id, channel, None)
            current = self._open_handoff(session, conversation_id)
            if current is None:
                current = models.Handoff(
                    conversation_id=conversation_id, reason=reason, channel=conversation.channel
                )
                session.add(current)
                conversation.state = WAITING
                session.flush()
            return self._handoff_view(session, current)

    def take(self, handoff_id: int, agent_id: int) -> HandoffView:
        """An agent takes the conversation over; raises HandoffConflict if another did first."""
        with self._session() as session, session.begin():
            taken = session.execute(
                update(models.Handoff)
                .where(
                    models.Handoff.id == handoff_id,
                    models.Handoff.closed_at.is_(None),
                    (models.Handoff.taken_by.is_(None)) | (models.Handoff.taken_by == agent_id),
                )
                .values(taken_at=utcnow(), taken_by=agent_id)
            ).rowcount
            if not taken:
                raise HandoffConflict(handoff_id)
            handoff = session.get(models.Handoff, handoff_id)
            session.execute(
                update(models.Conversation)
                .where(models.Conversation.id == handoff.conversation_id)
                .values(state=AGENT, agent_id=agent_id)
            )
            return self._handoff_view(session, handoff)

    def release(self, handoff_id: int, agent_id: int | None) -> HandoffView:
        """Close the handoff and give the conversation back to the assistant.

        `agent_id` None: the user went back to the assistant themselves. An agent can release
        a handoff only if it is waiting or theirs."""
        with self._session() as session, session.begin():
            condition = [models.Handoff.id == handoff_id, models.Handoff.closed_at.is_(None)]
            if agent_id is not None:
                condition.append(
                    models.Handoff.taken_by.is_(None) | (models.Handoff.taken_by == agent_id)
                )
            closed = session.execute(
                update(models.Handoff)
                .where(*condition)
                .values(closed_at=utcnow(), closed_by=agent_id)
            ).rowcount
            if not closed:
                raise HandoffConflict(handoff_id)
            handoff = session.get(models.Handoff, handoff_id)
            session.execute(
                update(models.Conversation)
                .where(models.Conversation.id == handoff.conversation_id)
                .values(state=BOT, agent_id=None)
            )
            return self._handoff_view(session, handoff)

    def open_handoff_of(self, conversation_id: str) -> HandoffView | None:
        with self._session() as session:
            handoff = self._open_handoff(session, conversation_id)
            return self._handoff_view(session, handoff) if handoff else None

    def handoff(self, handoff_id: int) -> HandoffView | None:
        with self._session() as session:
            handoff = session.get(models.Handoff, handoff_id)
            return self._handoff_view(session, handoff) if handoff else None

    def queue(self, include_closed_since: datetime | None = None) -> list[HandoffView]:
        """Open handoffs, oldest first (and those closed since the given instant)."""
        with self._session() as session:
            condition = models.Handoff.closed_at.is_(None)
            if include_closed_since is not None:
                condition = condition | (models.Handoff.closed_at >= include_closed_since)
            rows = session.scalars(
                select(models.Handoff).where(condition).order_by(models.Handoff.created_at)
            ).all()
            return [self._handoff_view(session, row) for row in rows]

    def _open_handoff(self, session: Session, conversation_id: str) -> models.Handoff | None:
        return session.scalars(
            select(models.Handoff)
            .where(
                models.Handoff.conversation_id == conversation_id,
                models.Handoff.closed_at.is_(None),
            )
            .order_by(models.Handoff.id.desc())
        ).first()

    def _handoff_view(self, session: Session, handoff: models.Handoff) -> HandoffView:
        last_user = session.execute(
            select(models.Turn.text, models.Turn.intent)
            .where(models.Turn.conversation_id == handoff.conversation_id, models.Turn.role == USER)
            .order_by(models.Turn.id.desc())
            .limit(1)
        ).first()
        turns = session.scalar(
            select(func.count(models.Turn.id)).where(
                models.Turn.conversation_id == handoff.conversation_id
            )
        )
        name = (
            session.get(models.Agent, handoff.taken_by).display_name if handoff.taken_by else None
        )
        return HandoffView(
            id=handoff.id,
            conversation_id=handoff.conversation_id,
            reason=handoff.reason,
            channel=handoff.channel,
            created_at=handoff.created_at,
            taken_at=handoff.taken_at,
            taken_by=handoff.taken_by,
            taken_by_name=name,
            closed_at=handoff.closed_at,
            last_user_text=last_user[0] if last_user else "",
            last_intent=last_user[1] if last_user else None,
            turns=turns or 0,
        )

    # ------------------------------------------------------------------ agents' presence

    def agents_online(self, now: datetime | None = None) -> int:
        since = (now or utcnow()) - ONLINE_WINDOW
        with self._session() as session:
            return (
                session.scalar(
                    select(func.count(models.Agent.id)).where(
                        models.Agent.active.is_(True),
                        models.Agent.role == "agent",
                        models.Agent.last_seen_at >= since,
                    )
                )
                or 0
            )

    def agent_name(self, agent_id: int) -> str | None:
        with self._session() as session:
            agent = session.get(models.Agent, agent_id)
            return agent.display_name if agent else None


def _turn_view(row: models.Turn, agent_name: str | None) -> TurnView:
    return TurnView(
        id=row.id,
        at=row.at,
        role=row.role,
        text=row.text,
        buttons=json.loads(row.buttons) if row.buttons else [],
        intent=row.intent,
        confidence=row.confidence,
        agent=agent_name if row.role == HUMAN else None,
    )


def _conversation_view(row: models.Conversation) -> ConversationView:
    return ConversationView(
        id=row.id,
        channel=row.channel,
        address=json.loads(row.address) if row.address else {},
        state=row.state,
        agent_id=row.agent_id,
        started_at=row.started_at,
        last_at=row.last_at,
    )
