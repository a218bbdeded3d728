"""What the support desk says to users (French). Facts (the assistance académique path) come
from the knowledge base's `ask_human` answer, not from here."""

from __future__ import annotations

# Typed (or clicked) by a user waiting for an agent who wants the assistant back.
BACK_TO_BOT_PAYLOAD = "/back_to_bot"
BACK_TO_BOT_WORDS = (
    "revenir a l'assistant",
    "retour a l'assistant",
    "revenir au bot",
    "retour au bot",
    "annuler la demande",
)
BACK_TO_BOT_BUTTON = {"title": "Revenir à l'assistant", "payload": BACK_TO_BOT_PAYLOAD}

MISUNDERSTOOD = (
    "Je ne parviens pas à comprendre votre demande : je la transmets à un conseiller, qui lira "
    "notre échange."
)
WAITING_ONLINE = (
    "Un conseiller va reprendre cette conversation : il vous répondra ici même, en général en "
    "quelques minutes. Vous pouvez déjà lui décrire votre situation (ne donnez jamais votre mot "
    "de passe). Pour revenir à l'assistant automatique, écrivez « revenir à l'assistant »."
)
WAITING_NOBODY = (
    "Aucun conseiller n'est disponible pour le moment. Votre demande est enregistrée et attend "
    "son tour : un conseiller vous répondra ici dès que possible. Pour revenir à l'assistant "
    "automatique, écrivez « revenir à l'assistant »."
)
STILL_WAITING = (
    "Message transmis : il sera lu par le conseiller qui reprendra votre conversation. Pour "
    "revenir à l'assistant automatique, écrivez « revenir à l'assistant »."
)
BACK_TO_BOT = (
    "D'accord, votre demande de conseiller est annulée. Je reste à votre disposition : posez "
    "votre question."
)
RELEASED = (
    "Le conseiller a terminé. Vous échangez de nouveau avec l'assistant automatique : posez "
    "votre question si vous en avez une autre."
)


def taken(agent_name: str) -> str:
    return f"{agent_name}, de l'assistance aux électeurs, a repris la conversation."


def folded(text: str) -> str:
    """Lower case, no accents, straight apostrophes, single spaces: to match typed commands."""
    import unicodedata

    text = unicodedata.normalize("NFKD", text.replace("’", "'")).lower()
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(text.split()).strip(" .!")


def wants_the_bot_back(text: str) -> bool:
    return text == BACK_TO_BOT_PAYLOAD or folded(text) in BACK_TO_BOT_WORDS
