"""The Rasa input channel the gateway talks to. It runs inside the Rasa server, which loads it
through credentials.yml; the gateway only calls it over HTTP.

Like Rasa's REST channel, plus what the support desk needs:
- `POST /webhooks/gateway/webhook` {"sender", "message"} answers
  {"messages": [...], "nlu": {"intent", "confidence"}}: the intent and confidence of this user
  turn, read back from the conversation's tracker, for the agents' transcript and the insights.
- `POST /webhooks/gateway/parse` {"text"} answers the NLU parse (intent ranking, entities) of a
  text without touching any conversation: the copilot's suggestions.
- Never silence: when an action fails during the turn (the action server is down or crashed),
  Rasa logs it, drops that action's events and answers nothing; this channel then adds the
  domain's `utter_service_error` and `"service_error": true`. The conversation stays where it
  was (the form keeps its slots), so it goes on once the action server is back. When the
  tracker store fails (its database is down), Rasa runs the turn on an empty conversation: its
  answer is replaced by the same sentence, and the stored conversation resumes afterwards.

Like the REST channel it trusts the sender it is given, so it listens on loopback only; when
`GATEWAY_RASA_TOKEN` is set, it also requires `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import contextvars
import hmac
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import logs, rasa_patches

logger = logging.getLogger(__name__)

MAX_TEXT_CHARS = 4000
SESSION_START = "/session_start"
# Said when the domain has no `utter_service_error` (it should).
SERVICE_ERROR = (
    "Désolé, un incident technique m'empêche de répondre. Réessayez dans un instant ; si le "
    "problème persiste, contactez votre assistance académique."
)
# Rasa logs these at ERROR and carries on (rasa 3.6): an action raised (`MessageProcessor.
# _run_action`: its events are dropped), or the tracker store failed (`FailSafeTrackerStore`:
# the turn ran on an empty conversation kept in memory, so its answer may be out of context).
ACTION_FAILED, TRACKER_STORE_FAILED = "action", "tracker store"
WATCHED = {
    "rasa.core.processor": ("Encountered an exception while running action", ACTION_FAILED),
    "rasa.core.tracker_store": ("Error happened when trying to", TRACKER_STORE_FAILED),
}

# The failures of the turn being handled in this task (None outside a turn).
_turn_failures: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar(
    "gateway_turn_failures", default=None
)


class _FailureWatch(logging.Handler):
    """Notes, for the turn that logged it, what failed. Rasa handles a message in the task of
    the request, so the context variable set by `receive` is the one seen here."""

    def __init__(self, mark: str, kind: str) -> None:
        super().__init__(level=logging.ERROR)
        self.mark, self.kind = mark, kind

    def emit(self, record: logging.LogRecord) -> None:
        failures = _turn_failures.get()
        if failures is not None and self.mark in str(record.msg):
            failures.add(self.kind)


def watch_failures() -> None:
    """Attach the watches to Rasa's loggers, once per process."""
    for name, (mark, kind) in WATCHED.items():
        target = logging.getLogger(name)
        if not any(isinstance(h, _FailureWatch) for h in target.handlers):
            target.addHandler(_FailureWatch(mark, kind))


class GatewayInput(InputChannel):
    @classmethod
    def name(cls) -> str:
        return "gateway"

    def __init__(self, token: str | None = None) -> None:
        self.token = token if token is not None else os.environ.get("GATEWAY_RASA_TOKEN", "")
        # The Rasa server that serves the gateway runs with our measured fixes to Rasa.
        rasa_patches.apply()

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
        # Rasa reads --logging-config-file (bot/logs.py), then installs coloredlogs' console
        # handler over it: our setup again, once the server is built.
        logs.configure("rasa")
        watch_failures()

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
            failures: set[str] = set()
            watching = _turn_failures.set(failures)
            try:
                await on_new_message(
                    UserMessage(text[:MAX_TEXT_CHARS], collector, sender, input_channel="gateway")
                )
            except Exception:
                logger.exception("the assistant failed on a message")
                return response.json({"error": "assistant failure"}, status=500)
            finally:
                _turn_failures.reset(watching)
            agent = request.app.ctx.agent
            tracker = await _tracker(agent, sender)
            messages = collector.messages
            # A new session (the gateway's « recommencer ») is rightly answered by nothing.
            expected_silence = text.strip() == SESSION_START or (
                tracker is not None and tracker.is_paused()
            )
            silent = not messages and not expected_silence
            if failures or silent:
                # Logged without the text: the user's message may hold anything.
                logger.warning(
                    "turn ended %s: answering the service-error message",
                    "with a failed " + " and ".join(sorted(failures)) if failures else "in silence",
                )
                if TRACKER_STORE_FAILED in failures:
                    messages = []  # answered without the conversation's context: not shown
                messages = [*messages, {"recipient_id": sender, "text": _service_error(agent)}]
            body: dict[str, Any] = {"messages": messages, "nlu": _latest_nlu(tracker)}
            if failures or silent:
                body["service_error"] = True
            return response.json(body)

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


async def _tracker(agent: Any, sender: str) -> Any:
    """The conversation's tracker as stored after the turn (None if it cannot be read)."""
    try:
        return await agent.tracker_store.retrieve(sender)
    except Exception:
        logger.exception("could not read the tracker back")
        return None


def _service_error(agent: Any) -> str:
    """The domain's `utter_service_error` text (one place for the sentence), or ours."""
    try:
        variants = agent.domain.responses.get("utter_service_error") or []
        text = variants[0].get("text") if variants else None
    except (AttributeError, IndexError, TypeError):
        text = None
    return text if isinstance(text, str) and text else SERVICE_ERROR


def _latest_nlu(tracker: Any) -> dict[str, Any] | None:
    """Intent and confidence of the sender's latest user message (the one just handled)."""
    intent = (tracker.latest_message.intent or {}) if tracker and tracker.latest_message else {}
    if not intent.get("name"):
        return None
    return {"intent": intent.get("name"), "confidence": intent.get("confidence")}
