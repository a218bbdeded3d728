"""Run a custom action on a tracker built like the one Rasa sends, and read what it said."""

from __future__ import annotations

import asyncio
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.base import KnowledgeAction


def tracker(
    intent: str,
    text: str = "",
    entities: dict[str, str] | None = None,
    slots: dict[str, Any] | None = None,
    events: list[dict[str, Any]] | None = None,
    ranking: list[tuple[str, float]] | None = None,
) -> Tracker:
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": 1.0},
        "entities": [{"entity": k, "value": v} for k, v in (entities or {}).items()],
        "intent_ranking": [{"name": n, "confidence": c} for n, c in (ranking or [])],
    }
    history = [*(events or []), {"event": "user", "text": text, "parse_data": latest}]
    return Tracker("test-user", slots or {}, latest, history, False, None, {}, "action_listen")


def run(action: KnowledgeAction, state: Tracker) -> tuple[list[dict], list[dict]]:
    """(messages, events) produced by `action`."""
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, state, {}))
    return dispatcher.messages, events


def said(messages: list[dict]) -> str:
    return "\n".join(m.get("text") or "" for m in messages)
