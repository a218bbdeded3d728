"""The Rasa input channel the gateway talks to (runs inside the Rasa server).

Like Rasa's REST channel, plus what the support desk needs:
- `POST /webhooks/gateway/webhook` {"sender", "message"} answers
  {"messages": [...], "nlu": {"intent", "confidence"}}: the intent and confidence of this user
  turn, read back from the conversation's tracker, for the agents' transcript and the insights.
- `POST /webhooks/gateway/parse` {"text"} answers the NLU parse (intent ranking, entities) of a
  text without touching any conversation: the copilot's suggestions.

Like the REST channel it trusts the sender it is given, so it listens on loopback only; when
`GATEWAY_RASA_TOKEN` is set, it also requires `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import hmac
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

logger = logging.getLogger(__name__)

MAX_TEXT_CHARS = 4000


class GatewayInput(InputChannel):
    @classmethod
    def name(cls) -> str:
        return "gateway"

    def __init__(self, token: str | None = None) -> None:
        self.token = token if token is not None else os.environ.get("GATEWAY_RASA_TOKEN", "")

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        return cls((credentials or {}).get("token"))

    def _authorised(self, request: Request) -> bool:
        if not self.token:
            return True
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode())

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        hook = Blueprint("gateway_webhook", __name__)

        @hook.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @hook.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            if not self._authorised(request):
                return response.json({"error": "unauthorised"}, status=401)
            body = request.json if isinstance(request.json, dict) else {}
            sender, text = body.get("sender"), body.get("message")
            if not isinstance(sender, str) or not sender or not isinstance(text, str):
                return response.json({"error": "sender and message are required"}, status=400)
            collector = CollectingOutputChannel()
            try:
                await on_new_message(
                    UserMessage(text[:MAX_TEXT_CHARS], collector, sender, input_channel="gateway")
                )
            except Exception:
                logger.exception("the assistant failed on a message")
                return response.json({"error": "assistant failure"}, status=500)
            nlu = await _latest_nlu(request, sender)
            return response.json({"messages": collector.messages, "nlu": nlu})

        @hook.route("/parse", methods=["POST"])
        async def parse(request: Request) -> HTTPResponse:
            if not self._authorised(request):
                return response.json({"error": "unauthorised"}, status=401)
            body = request.json if isinstance(request.json, dict) else {}
            text = body.get("text")
            if not isinstance(text, str) or not text.strip():
                return response.json({"error": "text is required"}, status=400)
            parsed = await request.app.ctx.agent.parse_message(text[:MAX_TEXT_CHARS])
            return response.json(
                {
                    "intent": parsed.get("intent"),
                    "intent_ranking": parsed.get("intent_ranking", []),
                    "entities": [
                        {k: e.get(k) for k in ("entity", "value", "start", "end")}
                        for e in parsed.get("entities", [])
                    ],
                }
            )

        return hook


async def _latest_nlu(request: Request, sender: str) -> dict[str, Any] | None:
    """Intent and confidence of the sender's latest user message (the one just handled)."""
    try:
        tracker = await request.app.ctx.agent.tracker_store.retrieve(sender)
    except Exception:
        logger.exception("could not read the tracker back")
        return None
    intent = (tracker.latest_message.intent or {}) if tracker and tracker.latest_message else {}
    if not intent.get("name"):
        return None
    return {"intent": intent.get("name"), "confidence": intent.get("confidence")}
