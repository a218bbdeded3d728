"""Answers that depend on an académie, a staff category or a scrutin named by the user."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.actions import wording
from bot.actions.base import KnowledgeAction, latest_entity
from bot.knowledge import Knowledge
from bot.knowledge.kb_file import OUTSIDE_TABLE
from bot.knowledge.situation import ABOUT_OTHERS, ASKS_WHO, COMPARISON, SITUATION
from bot.knowledge.store import AcademieInfo
from bot.personal_data.redaction import PLACEHOLDERS


class ActionWebmail(KnowledgeAction):
    """The webmail of the user's académie: named now, remembered, or asked with buttons."""

    def name(self) -> str:
        return "action_webmail"

    def answer(
        self, knowledge: Knowledge, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> list[dict[str, Any]]:
        name = latest_entity(tracker, "academie") or tracker.get_slot("academie")
        academie = knowledge.academie(name) if name else None
        if academie is None:
            dispatcher.utter_message(
                text=webmail_question(knowledge),
                buttons=[
                    wording.entity_button(a.name, "academie", a.name) for a in knowledge.academies()
                ],
            )
            return []
        return send_webmail(knowledge, dispatcher, academie.name)


def send_webmail(
    knowledge: Knowledge, dispatcher: CollectingDispatcher, name: str
) -> list[dict[str, Any]]:
    academie = knowledge.academie(name)
    dispatcher.utter_message(text=webmail_reply(knowledge, academie))
    return [SlotSet("academie", academie.name)]


def webmail_reply(knowledge: Knowledge, academie: AcademieInfo) -> str:
    """The answer to "webmail <académie>": its address, then how to log in."""
    general = knowledge.answer("webmail_access").text.split("\n\n")[0]
    return f"{wording.webmail(academie)}\n\n{general}"


def webmail_question(knowledge: Knowledge) -> str:
    """The answer to "webmail" without an académie: the general advice, then the question."""
    return f"{knowledge.answer('webmail_access').text}\n\nQuelle est votre académie ?"


class ActionWhoVotes(KnowledgeAction):
    """Who votes where: a category's scrutins, or a scrutin's voters, or ask the category."""

    def name(self) -> str:
        return "action_who_votes"

    def answer(
        self, knowledge: Knowledge, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> list[dict[str, Any]]:
        categories = message_categories(tracker)
        scrutin = latest_entity(tracker, "scrutin")
        if categories:
            return send_situation(knowledge, dispatcher, tracker, categories)
        if scrutin:
            return send_scrutin_voters(knowledge, dispatcher, scrutin)
        remembered = tracker.get_slot("categorie")
        if remembered:
            return send_eligibility(knowledge, dispatcher, remembered)
        dispatcher.utter_message(
            text=who_votes_question(knowledge),
            buttons=[
                wording.entity_button(name, "categorie", name) for name in knowledge.categories()
            ],
        )
        return []


def message_categories(tracker: Tracker) -> list[str]:
    """The staff categories of this turn's message, named or described, in order."""
    values: list[str] = []
    for value in tracker.get_latest_entity_values("categorie"):
        if value not in values:
            values.append(value)
    return values


def situation_flags(tracker: Tracker) -> set[str]:
    """`tiers` (asked for colleagues) and `comparaison`, as read by the NLU."""
    return set(tracker.get_latest_entity_values(SITUATION))


def send_situation(
    knowledge: Knowledge,
    dispatcher: CollectingDispatcher,
    tracker: Tracker,
    categories: list[str],
) -> list[dict[str, Any]]:
    """The answer about the categories of one message: one, two compared, or a yes/no check."""
    flags = situation_flags(tracker)
    about_others = ABOUT_OTHERS in flags
    scrutin = latest_entity(tracker, "scrutin")
    if scrutin and ASKS_WHO in flags:  # « la CAPD, c'est seulement pour les PE ? »
        return send_scrutin_voters(knowledge, dispatcher, scrutin)
    if categories == [OUTSIDE_TABLE]:
        dispatcher.utter_message(
            text=wording.not_in_table(),
            buttons=[
                wording.entity_button(name, "categorie", name) for name in knowledge.categories()
            ],
        )
        return []
    known = [c for c in categories if knowledge.eligibility_for(c) is not None]
    if len(known) >= 2 and COMPARISON in flags:
        pairs = [(c, knowledge.eligibility_for(c)) for c in known[:2]]
        dispatcher.utter_message(text=wording.comparison(pairs[0], pairs[1]))
        return []
    if len(known) >= 2:  # « mes collègues AESH et contractuels » : each list, about them
        dispatcher.utter_message(
            text="\n\n".join(eligibility_reply(knowledge, c, True) for c in known)
        )
        return []
    if len(known) == 1 and scrutin and len(categories) == 1:
        asked = knowledge.scrutins_named(scrutin)
        eligible = knowledge.eligibility_for(known[0])
        if len(asked) == 1:
            votes = asked[0].code in {s.code for s in eligible}
            check = wording.votes_in(known[0], asked[0], votes, about_others)
            reply = wording.eligibility(known[0], eligible, about_others)
            dispatcher.utter_message(text=f"{check}\n\n{reply}")
            return [] if about_others else [SlotSet("categorie", known[0])]
    return send_eligibility(knowledge, dispatcher, categories[0], about_others)


def send_eligibility(
    knowledge: Knowledge,
    dispatcher: CollectingDispatcher,
    category: str,
    about_others: bool = False,
) -> list[dict[str, Any]]:
    named = knowledge.categories_named(category)
    if len(named) > 1:
        dispatcher.utter_message(
            text=wording.ambiguous_category(category),
            buttons=[wording.entity_button(name, "categorie", name) for name in named],
        )
        return []
    text = eligibility_reply(knowledge, category, about_others)
    if text is None:
        dispatcher.utter_message(response="utter_default")
        return []
    dispatcher.utter_message(text=text)
    # A colleague's category is not the voter's own: it is not remembered for later questions.
    return [] if about_others else [SlotSet("categorie", category)]


def send_scrutin_voters(
    knowledge: Knowledge, dispatcher: CollectingDispatcher, name: str
) -> list[dict[str, Any]]:
    text = scrutin_voters_reply(knowledge, name)
    if text is None:
        dispatcher.utter_message(response="utter_default")
        return []
    dispatcher.utter_message(text=text)
    return []


def who_votes_question(knowledge: Knowledge) -> str:
    """The answer to "who votes where" without a category: the general answer, then the question."""
    return knowledge.answer("who_votes_where").text + "\n\nQuelle est votre situation ?"


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


class ActionHandleInform(KnowledgeAction):
    """A bare "Lyon", "je suis AESH", "et la CAPD ?": answer about what was named."""

    def name(self) -> str:
        return "action_handle_inform"

    def answer(
        self, knowledge: Knowledge, dispatcher: CollectingDispatcher, tracker: Tracker
    ) -> list[dict[str, Any]]:
        academie = latest_entity(tracker, "academie")
        categories = message_categories(tracker)
        scrutin = latest_entity(tracker, "scrutin")
        if categories:
            return send_situation(knowledge, dispatcher, tracker, categories)
        if academie and knowledge.academie(academie):
            return send_webmail(knowledge, dispatcher, academie)
        if scrutin:
            return send_scrutin_voters(knowledge, dispatcher, scrutin)
        text = (tracker.latest_message or {}).get("text") or ""
        if any(placeholder in text for placeholder in PLACEHOLDERS.values()):
            # A NUMEN, phone or birth date given while no request asks for it.
            dispatcher.utter_message(
                text=wording.UNASKED_PERSONAL_DATA,
                buttons=[
                    wording.intent_button("Identifiant électeur perdu", "lost_voter_id"),
                    wording.intent_button("Mot de passe électeur oublié", "lost_voter_password"),
                ],
            )
            return []
        dispatcher.utter_message(response="utter_default")
        return []
