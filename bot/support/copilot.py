"""The agents' copilot: what the assistant would answer to a question, ready to send.

For a user's turn or a question an agent types, `Copilot.suggest` gives the three most likely
answers, each with its confidence and the knowledge-base section it comes from, and direct
look-ups for what the question names (an académie's webmail, a staff category's scrutins, a
scrutin's voters). The question is redacted like any user message, then understood twice at once:
by the Rasa server's NLU-only endpoint (`/webhooks/gateway/parse`, which never touches a
conversation, so asking for a suggestion never changes the user's) and by the TF-IDF search of
the knowledge base's answers. Each answer is `bot.answers.reply`'s, what the assistant's own
actions say, so it states exactly what `kb/faq_fr.md` states at this moment. When the NLU does not
answer, the search and the look-ups (names matched directly in the text, as the NLU's extractor
would) still do, flagged `nlu: false`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import aiohttp

from bot import config
from bot.answers import local_now, reply, wording
from bot.answers.replies import eligibility_reply, webmail_reply
from bot.knowledge import Knowledge
from bot.knowledge.kb_file import read_kb
from bot.knowledge.matching import EntityMatcher
from bot.knowledge.search import Hit
from bot.personal_data.redaction import redact

logger = logging.getLogger(__name__)

Parse = Callable[[str], Awaitable[dict[str, Any]]]

SUGGESTIONS = 3
PARSE_TIMEOUT_SECONDS = 5
# Floors of the alternatives: a person judges them, so the search's is lower than the 0.3 the
# assistant needs to answer alone (faq.SEARCH_MIN_SCORE). Measured on tests/nlu/heldout.yml: the
# right answer is among the three for 241 of 243 FAQ questions; 100 of 126 other messages (hello,
# out of scope) get no suggestion at all (DIET + linear ensemble, 2026-11-29).
MIN_INTENT_CONFIDENCE = 0.05  # the NLU spreads a few % over the topics a question does not mean
MIN_SEARCH_SCORE = 0.2  # right sections score 0.26 at the median, wrong ones 0.16
MAX_LOOKUPS = 6
# Answered by handing the conversation to a person: nothing for an agent to send.
NOT_SUGGESTED = frozenset({"ask_human"})
# The knowledge-base sections the look-ups' facts come from (kb_file.py reads them by name).
WEBMAIL_SECTION = "Messageries professionnelles des académies"
ELIGIBILITY_SECTION = "Qui vote où ?"
SCRUTINS_SECTION = "Scrutins"


class NluUnavailable(Exception):
    """The Rasa server did not parse the question (down, slow, or an unexpected answer)."""


@dataclass(frozen=True)
class Suggestion:
    text: str
    confidence: float
    source: str  # title of the knowledge-base answer
    key: str  # the answer's key (= the intent)
    kind: str  # "intent": NLU confidence; "search": TF-IDF similarity to the answer


@dataclass(frozen=True)
class Lookup:
    title: str
    text: str
    source: str  # the knowledge-base section holding the facts
    kind: str  # "webmail", "eligibility" or "scrutin"


@dataclass(frozen=True)
class Suggestions:
    text: str  # the question, redacted
    suggestions: tuple[Suggestion, ...] = ()
    lookups: tuple[Lookup, ...] = ()
    nlu: bool = True  # False: the NLU did not answer, only the search and the names were used

    def as_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "nlu": self.nlu,
            "suggestions": [
                {**asdict(s), "confidence": round(s.confidence, 3)} for s in self.suggestions
            ],
            "lookups": [asdict(lookup) for lookup in self.lookups],
        }


class Copilot:
    """Suggests answers from one knowledge base, understanding questions with `parse`."""

    def __init__(
        self,
        knowledge: Knowledge,
        parse: Parse,
        *,
        matcher: EntityMatcher | None = None,
    ) -> None:
        self._knowledge = knowledge
        self._parse = parse
        self._matcher = matcher  # None: read from BOT_KB_PATH, like the NLU's extractor

    async def suggest(self, text: str) -> Suggestions:
        question = redact(text, date.today()).text.strip()
        if not question:  # empty, or it looked like a password: nothing is sent anywhere
            return Suggestions(question)
        parsed, hits = await asyncio.gather(
            self._parse_or_none(question),
            asyncio.to_thread(self._knowledge.search_answers, question, SUGGESTIONS + 1),
        )
        return await asyncio.to_thread(self._suggestions, question, parsed, hits)

    async def _parse_or_none(self, question: str) -> dict[str, Any] | None:
        try:
            return await self._parse(question)
        except NluUnavailable as error:
            logger.warning("copilot without NLU (%s): search and names only", error)
            return None

    def _suggestions(
        self, question: str, parsed: dict[str, Any] | None, hits: list[Hit]
    ) -> Suggestions:
        entities = self._entities(question, parsed)
        titles = {k: t for k, t in self._knowledge.answer_titles() if k not in NOT_SUGGESTED}
        now = local_now(self._knowledge)
        picked: list[Suggestion] = []
        for key, confidence, kind in _candidates(parsed, hits, titles):
            if any(s.key == key for s in picked):
                continue
            # What the assistant answers to this intent for this message, as its actions do.
            answer = reply(self._knowledge, key, entities, now, text=question)
            if answer.text is None:  # a response of the dialogue: nothing for an agent to send
                continue
            picked.append(Suggestion(answer.text, confidence, titles[key], key, kind))
            if len(picked) == SUGGESTIONS:
                break
        names = [(e["entity"], e["value"]) for e in entities]  # a look-up for every name
        return Suggestions(
            question, tuple(picked), self._lookups(list(dict.fromkeys(names))), parsed is not None
        )

    def _entities(self, question: str, parsed: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The names of the question as the NLU gives them (entity, value, role), in order;
        without the NLU, the knowledge base's names matched directly in the text."""
        if parsed is not None:
            return [
                e
                for e in parsed.get("entities") or []
                if isinstance(e, dict)
                and isinstance(e.get("entity"), str)
                and isinstance(e.get("value"), str)
            ]
        if self._matcher is None:
            self._matcher = EntityMatcher.from_kb(read_kb(config.kb_path()))
        return [{"entity": m.entity, "value": m.value} for m in self._matcher.find(question)]

    def _lookups(self, entities: list[tuple[str, str]]) -> tuple[Lookup, ...]:
        found: dict[tuple[str, str], Lookup] = {}
        for entity, value in entities:
            for lookup in self._lookups_for(entity, value):
                found.setdefault((lookup.kind, lookup.title), lookup)
        return tuple(found.values())[:MAX_LOOKUPS]

    def _lookups_for(self, entity: str, value: str) -> list[Lookup]:
        """The facts about one name: as many look-ups as it designates ("PsyEN": two)."""
        knowledge = self._knowledge
        if entity == "academie":
            academie = knowledge.academie(value)
            if academie is None:
                return []
            title = f"Messagerie de l'académie : {academie.name}"
            return [Lookup(title, webmail_reply(knowledge, academie), WEBMAIL_SECTION, "webmail")]
        if entity == "categorie":
            return [
                Lookup(f"Scrutins : {category}", text, ELIGIBILITY_SECTION, "eligibility")
                for category in knowledge.categories_named(value)
                if (text := eligibility_reply(knowledge, category))
            ]
        if entity == "scrutin":
            everyone = knowledge.categories()
            return [
                Lookup(
                    f"Qui vote : {scrutin.code}",
                    wording.scrutin_voters(scrutin, everyone),
                    SCRUTINS_SECTION,
                    "scrutin",
                )
                for scrutin in knowledge.scrutins_named(value)
            ]
        return []


def _candidates(
    parsed: dict[str, Any] | None, hits: list[Hit], titles: dict[str, str]
) -> list[tuple[str, float, str]]:
    """(key, confidence, kind) of possible answers, best first.

    The NLU's top intent comes first when it is an answer: it is what the assistant itself
    answers (when unsure, the NLU's top intent is `nlu_fallback`). The other intents and the
    search hits follow by their number, each labelled with what the number means.
    """
    first: list[tuple[str, float, str]] = []
    others: list[tuple[str, float, str]] = []
    if parsed is not None:
        top = parsed.get("intent") or {}
        if top.get("name") in titles:
            first.append((top["name"], float(top.get("confidence") or 0.0), "intent"))
        for ranked in parsed.get("intent_ranking") or []:
            name, confidence = ranked.get("name"), float(ranked.get("confidence") or 0.0)
            if name in titles and name != top.get("name") and confidence >= MIN_INTENT_CONFIDENCE:
                others.append((name, confidence, "intent"))
    others += [
        (h.key, h.score, "search") for h in hits if h.key in titles and h.score >= MIN_SEARCH_SCORE
    ]
    return first + sorted(others, key=lambda c: -c[1])


def rasa_parser(http: aiohttp.ClientSession, rasa_url: str) -> Parse:
    """A `parse` for `Copilot`: the Rasa server's NLU-only parse of a text (no conversation).

    Raises `NluUnavailable` when the server does not give a parse within a few seconds.
    """
    url = f"{rasa_url.rstrip('/')}/webhooks/gateway/parse"
    timeout = aiohttp.ClientTimeout(total=PARSE_TIMEOUT_SECONDS)

    async def parse(text: str) -> dict[str, Any]:
        try:
            async with http.post(
                url, json={"text": text}, headers=config.rasa_channel_headers(), timeout=timeout
            ) as reply:
                if reply.status != 200:
                    raise NluUnavailable(f"HTTP {reply.status}")
                body = await reply.json()
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as error:
            raise NluUnavailable(type(error).__name__) from error
        if not isinstance(body, dict):
            raise NluUnavailable("the parse is not a JSON object")
        return body

    return parse
