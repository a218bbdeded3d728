"""Rasa SDK custom actions. Thin: they ask `bot.knowledge` and word the answer in French."""

from bot.actions.faq import ActionAnswerFaq, ActionClarify, ActionHelp, ActionOutOfScope
from bot.actions.lookup import ActionHandleInform, ActionWebmail, ActionWhoVotes

__all__ = [
    "ActionAnswerFaq",
    "ActionClarify",
    "ActionHandleInform",
    "ActionHelp",
    "ActionOutOfScope",
    "ActionWebmail",
    "ActionWhoVotes",
]
