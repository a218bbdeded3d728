"""SQLAlchemy models of the support desk: conversations and their turns, handoffs to human
agents, agent accounts and sessions, and the audit trail of agent actions.

Texts are stored as the gateway redacted them (NUMEN, phone, birth date, e-mail local part
masked): no personal value in clear ever lands in these tables.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import declarative_base

Base = declarative_base()

# Conversation states: the assistant answers, a handoff waits for an agent, an agent answers.
BOT, WAITING, AGENT = "bot", "waiting", "agent"
# Turn roles.
USER, ASSISTANT, HUMAN, SYSTEM = "user", "bot", "agent", "system"


def utcnow() -> datetime:
    return datetime.utcnow()


class Conversation(Base):
    """One user's conversation on one channel; `id` is the Rasa sender id the channel assigned."""

    __tablename__ = "support_conversations"

    id = Column(String(96), primary_key=True)
    channel = Column(String(16), nullable=False)  # web | telegram | slack
    # Where an agent's reply is delivered (JSON: Telegram chat id, Slack channel...); web: none.
    address = Column(Text)
    started_at = Column(DateTime, nullable=False, default=utcnow)
    last_at = Column(DateTime, nullable=False, default=utcnow, index=True)
    state = Column(String(16), nullable=False, default=BOT, index=True)
    agent_id = Column(Integer, ForeignKey("support_agents.id"))


class Turn(Base):
    """One message of a conversation, as shown (redacted), with what the NLU made of it."""

    __tablename__ = "support_turns"
    __table_args__ = (Index("ix_support_turns_conversation", "conversation_id", "id"),)

    id = Column(Integer, primary_key=True, autoincrement=True)
    conversation_id = Column(
        String(96), ForeignKey("support_conversations.id", ondelete="CASCADE"), nullable=False
    )
    at = Column(DateTime, nullable=False, default=utcnow, index=True)
    role = Column(String(8), nullable=False)  # user | bot | agent | system
    text = Column(Text, nullable=False, default="")
    buttons = Column(Text)  # JSON list of {"title", "payload"}, bot turns only
    intent = Column(String(64))  # user turns answered by the assistant
    confidence = Column(Float)
    agent_id = Column(Integer, ForeignKey("support_agents.id"))


class Handoff(Base):
    """A request for a human: open until an agent hands the conversation back (or the user
    goes back to the assistant)."""

    __tablename__ = "support_handoffs"

    id = Column(Integer, primary_key=True, autoincrement=True)
    conversation_id = Column(
        String(96), ForeignKey("support_conversations.id", ondelete="CASCADE"), nullable=False
    )
    reason = Column(String(16), nullable=False)
    channel = Column(String(16), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow, index=True)
    taken_at = Column(DateTime)
    taken_by = Column(Integer, ForeignKey("support_agents.id"))
    closed_at = Column(DateTime, index=True)
    closed_by = Column(Integer, ForeignKey("support_agents.id"))  # None: the user left the queue


class Agent(Base):
    """A support agent's account (created with `python -m bot.support agent add`)."""

    __tablename__ = "support_agents"

    id = Column(Integer, primary_key=True, autoincrement=True)
    login = Column(String(64), unique=True, nullable=False)
    display_name = Column(String(128), nullable=False)
    password_hash = Column(String(255), nullable=False)
    role = Column(String(16), nullable=False, default="agent")  # agent | analyst
    active = Column(Boolean, nullable=False, default=True)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    last_seen_at = Column(DateTime, index=True)


class AgentSession(Base):
    """A logged-in console session; only the SHA-256 of the cookie's token is stored."""

    __tablename__ = "support_agent_sessions"

    token_hash = Column(String(64), primary_key=True)
    agent_id = Column(Integer, ForeignKey("support_agents.id", ondelete="CASCADE"), nullable=False)
    csrf_token = Column(String(64), nullable=False)
    created_at = Column(DateTime, nullable=False, default=utcnow)
    expires_at = Column(DateTime, nullable=False, index=True)


class AuditEntry(Base):
    """Every agent action: who, what, on which conversation, when (never the message text)."""

    __tablename__ = "support_audit"

    id = Column(Integer, primary_key=True, autoincrement=True)
    at = Column(DateTime, nullable=False, default=utcnow, index=True)
    agent_id = Column(Integer, ForeignKey("support_agents.id"))
    action = Column(String(32), nullable=False)
    conversation_id = Column(String(96))
    detail = Column(Text)
