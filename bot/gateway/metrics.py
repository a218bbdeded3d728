"""The gateway's metrics: turns, their latency, intents, handoffs, the vault, rate limits.

Counted where they happen without changing how they happen: `MeteredRelay` is the relay with
each turn classified and timed (every channel sends through it), `MeteredAddressLimits` the
address limits with each refusal counted; handoffs taken and requested come from the support
desk's live events; the gauges that live in our database (handoffs waiting, vault entries) are
read at each scrape. Names and what each means: docs/production.md.

Outcome of a turn (label `outcome`): `answered`; `clarification` (the classifier was unsure:
the assistant offered the closest answer or asked which topic was meant); `fallback` (out of
scope: « je n'ai pas cette information »); `refused` (the relay would not send it: empty, too
long, too fast, too many chores, conversation too long); `error` (Rasa, the action server or
our database failed: the user got « réessayez »); `agent` (a handoff is open: the message went
to a person, not to the assistant).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import time
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy.exc import SQLAlchemyError

from bot import config
from bot.gateway.keys import DESK, LIMITS, VAULT
from bot.gateway.limits import AddressLimits
from bot.gateway.relay import CHORE_TOO_FAST, TURN_LIMIT, Exchange, Refused, Relay
from bot.metrics import FORBIDDEN, exposition, may_read_metrics
from bot.support.desk import channel_of
from bot.support.models import WAITING
from bot.support.store import TurnNlu

logger = logging.getLogger(__name__)

ANSWERED, CLARIFICATION, FALLBACK = "answered", "clarification", "fallback"
REFUSED, ERROR, AGENT = "refused", "error", "agent"
FALLBACK_INTENT = "nlu_fallback"  # Rasa's FallbackClassifier: the assistant asks to clarify
OUT_OF_SCOPE_INTENT = "out_of_scope"
# Rasa answers in 30-250 ms; the gateway gives up after 15 s (app.RASA_TIMEOUT).
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0)

TURNS = Counter(
    "assistant_turns",
    "Messages d'usagers traités par la passerelle, par canal et par issue",
    ["channel", "outcome"],
)
TURN_SECONDS = Histogram(
    "assistant_turn_duration_seconds",
    "Durée d'un tour (message reçu -> réponse), par canal ; sans les messages refusés",
    ["channel"],
    buckets=LATENCY_BUCKETS,
)
INTENTS = Counter(
    "assistant_intents", "Intentions reconnues par Rasa dans les messages relayés", ["intent"]
)
HANDOFFS_WAITING = Gauge(
    "assistant_handoffs_waiting", "Conversations en attente d'un agent (lu dans la base)"
)
HANDOFFS_REQUESTED = Counter(
    "assistant_handoffs_requested", "Conversations passées à la file des agents (ce processus)"
)
HANDOFFS_TAKEN = Counter(
    "assistant_handoffs_taken", "Prises en main par un agent (console de ce processus)"
)
VAULT_ENTRIES = Gauge(
    "assistant_vault_entries", "Valeurs personnelles chiffrées en attente dans le coffre"
)
RATE_LIMITED = Counter(
    "assistant_rate_limited",
    "Messages refusés par une limite de débit (conversation, address, new_conversation, chores)",
    ["limit"],
)
CHANNELS = ("web", "telegram", "slack")  # bot.support.desk.channel_of
# Every series exists from the start at 0, so that a rate over it is defined before the first.
for _channel in CHANNELS:
    TURN_SECONDS.labels(_channel)
    for _outcome in (ANSWERED, CLARIFICATION, FALLBACK, REFUSED, ERROR, AGENT):
        TURNS.labels(_channel, _outcome)
for _limit in ("conversation", "address", "new_conversation", "chores"):
    RATE_LIMITED.labels(_limit)


def outcome_of(messages: list[dict[str, Any]], nlu: TurnNlu | None, reached_rasa: bool) -> str:
    """The outcome of a turn the relay did not refuse (see the module's docstring)."""
    if not reached_rasa:
        # The relay answered itself: a handoff is open, or the conversation is too long.
        too_long = any(m.get("text") == TURN_LIMIT for m in messages)
        return REFUSED if too_long else AGENT
    if any(m.get("text") in service_error_texts() for m in messages):
        return ERROR
    intent = nlu.intent if nlu else None
    if intent == OUT_OF_SCOPE_INTENT:
        return FALLBACK
    if intent == FALLBACK_INTENT:
        return CLARIFICATION
    return ANSWERED


@functools.cache
def service_error_texts() -> frozenset[str]:
    """The domain's `utter_service_error` sentences: what Rasa's channel answers when an action
    or the tracker store failed (written once, in domain.yml)."""
    with (config.REPO_ROOT / "domain.yml").open(encoding="utf-8") as file:
        domain = yaml.safe_load(file)
    variants = (domain.get("responses") or {}).get("utter_service_error") or []
    return frozenset(v["text"] for v in variants if isinstance(v, dict) and "text" in v)


@dataclass
class _TurnSeen:
    reached_rasa: bool = False
    nlu: TurnNlu | None = None


# What `_post` saw of the turn being sent in this task (the relay calls it within `send`).
_current_turn: contextvars.ContextVar[_TurnSeen | None] = contextvars.ContextVar(
    "metered_turn", default=None
)


class MeteredRelay(Relay):
    """The relay, each turn counted by channel and outcome, timed, and its intent counted."""

    async def send(
        self,
        sender: str,
        text: str,
        address: dict[str, Any] | None = None,
        client: str | None = None,
    ) -> Exchange:
        channel = channel_of(sender)
        seen = _TurnSeen()
        watching = _current_turn.set(seen)
        started = time.perf_counter()
        try:
            exchange = await super().send(sender, text, address, client)
        except Refused as refused:
            if refused.status == 429:
                limit = "chores" if refused.message == CHORE_TOO_FAST else "conversation"
                RATE_LIMITED.labels(limit).inc()
            outcome = ERROR if refused.status >= 500 else REFUSED
            TURNS.labels(channel, outcome).inc()
            if outcome == ERROR:
                TURN_SECONDS.labels(channel).observe(time.perf_counter() - started)
            raise
        finally:
            _current_turn.reset(watching)
        outcome = outcome_of(exchange.messages, seen.nlu, seen.reached_rasa)
        TURNS.labels(channel, outcome).inc()
        if outcome != REFUSED:
            TURN_SECONDS.labels(channel).observe(time.perf_counter() - started)
        if seen.nlu is not None:
            INTENTS.labels(seen.nlu.intent).inc()
        return exchange

    async def _post(self, sender: str, text: str) -> tuple[list[dict[str, Any]], TurnNlu | None]:
        messages, nlu = await super()._post(sender, text)
        seen = _current_turn.get()
        if seen is not None:
            seen.reached_rasa, seen.nlu = True, nlu
        return messages, nlu


class MeteredAddressLimits(AddressLimits):
    """The limits per client address, each refusal counted."""

    async def allow_new_conversation(self, address: str) -> bool:
        allowed = await super().allow_new_conversation(address)
        if not allowed:
            RATE_LIMITED.labels("new_conversation").inc()
        return allowed

    async def allow_message(self, address: str) -> bool:
        allowed = await super().allow_message(address)
        if not allowed:
            RATE_LIMITED.labels("address").inc()
        return allowed


async def metrics(request: web.Request) -> web.Response:
    """The Prometheus page, for this host or the bearer of `METRICS_TOKEN`."""
    client = request.app[LIMITS].address_of(request)
    if not may_read_metrics(client, request.headers.get("Authorization")):
        logger.info("metrics refused to a client without the token")
        return web.json_response({"error": FORBIDDEN}, status=403)
    await _read_database_gauges(request.app)
    body, media_type = exposition()
    response = web.Response(body=body)
    response.headers["Content-Type"] = media_type
    return response


async def _read_database_gauges(app: web.Application) -> None:
    """Handoffs waiting and vault entries, from our database (shared by every gateway: read
    them with `max`, not `sum`); unknown (NaN) while it cannot be read."""
    try:
        waiting, entries = await asyncio.gather(
            asyncio.to_thread(_waiting_handoffs, app), asyncio.to_thread(app[VAULT].size)
        )
    except SQLAlchemyError:
        logger.warning("metrics: our database could not be read")
        waiting = entries = float("nan")
    HANDOFFS_WAITING.set(waiting)
    VAULT_ENTRIES.set(entries)


def _waiting_handoffs(app: web.Application) -> int:
    return sum(1 for handoff in app[DESK].store.queue() if handoff.state == WAITING)


def _count_desk_event(event: dict[str, Any]) -> None:
    """Handoffs requested and taken, as this gateway's support desk announces them (once, even
    when the consoles of every gateway receive the event through Redis)."""
    if event.get("type") == "handoff":
        HANDOFFS_REQUESTED.inc()
    elif event.get("type") == "taken":
        HANDOFFS_TAKEN.inc()


def setup_metrics(app: web.Application) -> None:
    """`GET /metrics`, and the count of the desk's events."""
    app[DESK].events.observers.append(_count_desk_event)
    app.router.add_get("/metrics", metrics)
