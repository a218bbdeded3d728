"""What the assistant answers to one understood message: `reply(knowledge, intent, entities, now)`.

The Rasa actions and the agents' copilot both call `reply`, so a suggestion is exactly what the
assistant itself would say. `entities` are those of the message as the NLU gives them (dicts
with `entity`, `value` and, for some, a `role`); like the actions always did, an entity with a
role (« avant » : the académie of before) is not taken as the one the voter asks about.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.answers import wording
from bot.knowledge import Knowledge
from bot.knowledge.clock import now as clock_now
from bot.knowledge.kb_file import OUTSIDE_TABLE
from bot.knowledge.situation import ABOUT_OTHERS, ASKS_WHO, COMPARISON, SITUATION
from bot.knowledge.store import AcademieInfo
from bot.personal_data.redaction import PLACEHOLDERS

# The answers that depend on what the message names; any other intent is a KB section's key.
WEBMAIL = "webmail_access"
WHO_VOTES = "who_votes_where"
WHAT_IS_SCRUTIN = "what_is_scrutin"
INFORM = "inform"
# A response of domain.yml, for when there is nothing better to say.
NOT_UNDERSTOOD = "utter_default"
# What an answer remembers about the voter for later questions (slots of domain.yml).
REMEMBERED = ("academie", "categorie")


@dataclass(frozen=True)
class Reply:
    """An answer: its text and buttons, and what it remembers about the voter.

    `text` is None when the answer is a response of the domain (`response`), which only the
    assistant's dialogue can say (the copilot has nothing to suggest then)."""

    text: str | None
    buttons: tuple[dict[str, str], ...] = ()
    remembered: Mapping[str, str] = field(default_factory=dict)
    response: str | None = None


def local_now(knowledge: Knowledge) -> datetime:
    """Naive local time in the knowledge base's time zone (pinned by `BOT_NOW`)."""
    return clock_now(knowledge.timezone).replace(tzinfo=None)


def reply(
    knowledge: Knowledge,
    intent: str,
    entities: Iterable[Mapping[str, Any]],
    now: datetime,
    *,
    remembered: Mapping[str, Any] | None = None,
    text: str = "",
) -> Reply:
    """The answer to `intent` for a message naming `entities`, at local time `now`.

    `remembered`: what earlier answers remembered (`REMEMBERED`); `text`: the message itself,
    redacted (a personal value given out of a chore is answered about)."""
    named = Named(entities)
    remembered = remembered or {}
    if intent == WEBMAIL:
        return _webmail(knowledge, named.first("academie") or remembered.get("academie"))
    if intent == WHO_VOTES:
        return _who_votes(knowledge, named, remembered.get("categorie"))
    if intent == INFORM:
        return _inform(knowledge, named, text)
    if intent == WHAT_IS_SCRUTIN:
        scrutins = named.values("scrutin")
        # One scrutin named: what it is and who votes in it; several: the general answer.
        voters = scrutin_voters_reply(knowledge, scrutins[0]) if len(scrutins) == 1 else None
        if voters:
            return Reply(voters)
    answer = knowledge.answer(intent)
    if answer is None:
        return Reply(None, response=NOT_UNDERSTOOD)
    return Reply(wording.answer_with_status(answer, now))


class Named:
    """The names of one message, by kind, in order, each once (roles set apart)."""

    def __init__(self, entities: Iterable[Mapping[str, Any]]) -> None:
        self._entities = [e for e in entities if isinstance(e, Mapping)]

    def values(self, entity: str) -> list[str]:
        found: list[str] = []
        for e in self._entities:
            value = e.get("value")
            wanted = e.get("entity") == entity and e.get("role") is None and e.get("group") is None
            if wanted and isinstance(value, str) and value not in found:
                found.append(value)
        return found

    def first(self, entity: str) -> str | None:
        values = self.values(entity)
        return values[0] if values else None


# --- The webmail of an académie ----------------------------------------------------------------


def _webmail(knowledge: Knowledge, name: str | None) -> Reply:
    academie = knowledge.academie(name) if name else None
    if academie is None:
        buttons = [wording.entity_button(a.name, "academie", a.name) for a in knowledge.academies()]
        return Reply(webmail_question(knowledge), tuple(buttons))
    return _webmail_of(knowledge, academie)


def _webmail_of(knowledge: Knowledge, academie: AcademieInfo) -> Reply:
    return Reply(webmail_reply(knowledge, academie), remembered={"academie": academie.name})


def webmail_reply(knowledge: Knowledge, academie: AcademieInfo) -> str:
    """The answer to "webmail <académie>": its address, then how to log in."""
    general = knowledge.answer(WEBMAIL).text.split("\n\n")[0]
    return f"{wording.webmail(academie)}\n\n{general}"


def webmail_question(knowledge: Knowledge) -> str:
    """The answer to "webmail" without an académie: the general advice, then the question."""
    return f"{knowledge.answer(WEBMAIL).text}\n\nQuelle est votre académie ?"


# --- Who votes where ---------------------------------------------------------------------------


def _who_votes(knowledge: Knowledge, named: Named, remembered: str | None) -> Reply:
    categories = named.values("categorie")
    scrutin = named.first("scrutin")
    if categories:
        return _situation(knowledge, named, categories)
    if scrutin:
        return _scrutin_voters(knowledge, scrutin)
    if remembered:
        return _eligibility(knowledge, remembered)
    return Reply(who_votes_question(knowledge), _category_buttons(knowledge))


def _category_buttons(knowledge: Knowledge, names: list[str] | None = None) -> tuple:
    names = knowledge.categories() if names is None else names
    return tuple(wording.entity_button(name, "categorie", name) for name in names)


def _situation(knowledge: Knowledge, named: Named, categories: list[str]) -> Reply:
    """The answer about the categories of one message: one, two compared, or a yes/no check."""
    flags = set(named.values(SITUATION))
    about_others = ABOUT_OTHERS in flags
    scrutin = named.first("scrutin")
    if scrutin and ASKS_WHO in flags:  # « la CAPD, c'est seulement pour les PE ? »
        return _scrutin_voters(knowledge, scrutin)
    if categories == [OUTSIDE_TABLE]:
        return Reply(wording.not_in_table(), _category_buttons(knowledge))
    known = [c for c in categories if knowledge.eligibility_for(c) is not None]
    if len(known) >= 2 and COMPARISON in flags:
        pairs = [(c, knowledge.eligibility_for(c)) for c in known[:2]]
        return Reply(wording.comparison(pairs[0], pairs[1]))
    if len(known) >= 2:  # « mes collègues AESH et contractuels » : each list, about them
        return Reply("\n\n".join(eligibility_reply(knowledge, c, True) for c in known))
    if len(known) == 1 and scrutin and len(categories) == 1:
        asked = knowledge.scrutins_named(scrutin)
        eligible = knowledge.eligibility_for(known[0])
        if len(asked) == 1:
            votes = asked[0].code in {s.code for s in eligible}
            check = wording.votes_in(known[0], asked[0], votes, about_others)
            text = f"{check}\n\n{wording.eligibility(known[0], eligible, about_others)}"
            return Reply(text, remembered={} if about_others else {"categorie": known[0]})
    return _eligibility(knowledge, categories[0], about_others)


def _eligibility(knowledge: Knowledge, category: str, about_others: bool = False) -> Reply:
    named = knowledge.categories_named(category)
    if len(named) > 1:
        return Reply(wording.ambiguous_category(category), _category_buttons(knowledge, named))
    text = eligibility_reply(knowledge, category, about_others)
    if text is None:
        return Reply(None, response=NOT_UNDERSTOOD)
    # A colleague's category is not the voter's own: it is not remembered for later questions.
    return Reply(text, remembered={} if about_others else {"categorie": category})


def _scrutin_voters(knowledge: Knowledge, name: str) -> Reply:
    text = scrutin_voters_reply(knowledge, name)
    return Reply(None, response=NOT_UNDERSTOOD) if text is None else Reply(text)


def who_votes_question(knowledge: Knowledge) -> str:
    """The answer to "who votes where" without a category: the general answer, then the question."""
    return knowledge.answer(WHO_VOTES).text + "\n\nQuelle est votre situation ?"


def eligibility_reply(
    knowledge: Knowledge, category: str, about_others: bool = False
) -> str | None:
    """The scrutins of one staff category (None for a name that is not one category)."""
    scrutins = knowledge.eligibility_for(category)
    return None if scrutins is None else wording.eligibility(category, scrutins, about_others)


def scrutin_voters_reply(knowledge: Knowledge, name: str) -> str | None:
    """What each scrutin `name` designates is, and who votes in it (None: no such scrutin)."""
    scrutins = knowledge.scrutins_named(name)
    if not scrutins:
        return None
    everyone = knowledge.categories()
    return "\n\n".join(wording.scrutin_voters(s, everyone) for s in scrutins)


# --- A bare name: "Lyon", "je suis AESH", "et la CAPD ?" ----------------------------------------


def _inform(knowledge: Knowledge, named: Named, text: str) -> Reply:
    academie = named.first("academie")
    categories = named.values("categorie")
    scrutin = named.first("scrutin")
    if categories:
        return _situation(knowledge, named, categories)
    if academie and knowledge.academie(academie):
        return _webmail_of(knowledge, knowledge.academie(academie))
    if scrutin:
        return _scrutin_voters(knowledge, scrutin)
    if any(placeholder in text for placeholder in PLACEHOLDERS.values()):
        # A NUMEN, phone or birth date given while no request asks for it.
        buttons = (
            wording.intent_button("Identifiant électeur perdu", "lost_voter_id"),
            wording.intent_button("Mot de passe électeur oublié", "lost_voter_password"),
        )
        return Reply(wording.UNASKED_PERSONAL_DATA, buttons)
    return Reply(None, response=NOT_UNDERSTOOD)
