"""French wording of knowledge-base data: one function per kind of sentence."""

from __future__ import annotations

import json
from datetime import datetime

from bot.knowledge.store import AcademieInfo, AnswerText, Period, ScrutinInfo

PARIS = " (heure de Paris)"
UNASKED_PERSONAL_DATA = (
    "Je n'ai pas besoin de cette information pour le moment : je ne la demande que pendant une "
    "demande de nouvel identifiant électeur ou de réinitialisation du mot de passe. Elle a été "
    "masquée et sera effacée automatiquement dans quelques minutes. Que souhaitez-vous faire ?"
)


def period_status(period: Period, now: datetime) -> str:
    """Where `now` (naive local time) stands in `period`, in one sentence."""
    status = period.status(now)
    start = period.start_text and period.start_text + (PARIS if period.start_has_time else "")
    end = period.end_text and period.end_text + (PARIS if period.end_has_time else "")
    if status == "before":
        return f"**{period.label}** : pas encore ouvert, à partir du {start}."
    if status == "closed":
        return f"**{period.label}** : terminé depuis le {end}."
    if end:
        return f"**{period.label}** : ouvert en ce moment, jusqu'au {end}."
    return f"**{period.label}** : disponible depuis le {start}."


def answer_with_status(answer: AnswerText, now: datetime) -> str:
    """A knowledge-base answer, followed by where `now` stands in its calendar event if any."""
    if answer.period is None:
        return answer.text
    return f"{answer.text}\n\n{period_status(answer.period, now)}"


def scrutin_line(scrutin: ScrutinInfo) -> str:
    return f"- **{scrutin.code}** : {scrutin.title}"


def eligibility(category: str, scrutins: list[ScrutinInfo], about_others: bool = False) -> str:
    """A category's scrutins, addressed to the voter, or about colleagues (« mes AESH… »)."""
    count = len(scrutins)
    who = "les personnels de cette catégorie votent" if about_others else "vous votez"
    lines = [f"**{category}** : {who} à **{count} scrutin{'s' if count > 1 else ''}** :"]
    lines += [scrutin_line(s) for s in scrutins]
    return "\n".join(lines)


def comparison(first: tuple[str, list[ScrutinInfo]], second: tuple[str, list[ScrutinInfo]]) -> str:
    """Two categories side by side: yes or no first, then both lists and what they share."""
    (a, a_scrutins), (b, b_scrutins) = first, second
    a_codes, b_codes = [s.code for s in a_scrutins], [s.code for s in b_scrutins]
    if set(a_codes) == set(b_codes):
        head = f"**Oui** : {a} et {b} votent aux mêmes scrutins ({len(a_codes)})."
    else:
        head = (
            f"**Non** : {a} et {b} ne votent pas aux mêmes scrutins "
            f"({len(a_codes)} et {len(b_codes)})."
        )
    shared = [code for code in a_codes if code in b_codes]
    blocks = [head, eligibility(a, a_scrutins, True), eligibility(b, b_scrutins, True)]
    if shared and set(a_codes) != set(b_codes):
        blocks.append(f"En commun : {', '.join(shared)}.")
    return "\n\n".join(blocks)


def votes_in(category: str, scrutin: ScrutinInfo, votes: bool, about_others: bool) -> str:
    """The yes or no of « est-ce que je vote à la CAPD ? » for one category."""
    subject, verb = (category, "votent") if about_others else (f"vous ({category})", "votez")
    if votes:
        return f"**Oui** : {subject} {verb} au scrutin **{scrutin.code}**."
    return f"**Non** : {subject} ne {verb} pas au scrutin **{scrutin.code}**."


def not_in_table() -> str:
    """A job the FAQ's eligibility table does not cover: say so rather than guess."""
    return (
        "Votre situation ne figure pas dans le tableau « Qui vote où ? » de cette FAQ, qui "
        "concerne les personnels du premier degré : je ne peux pas vous dire vos scrutins sans "
        "risquer de me tromper. Votre espace électeur affiche les scrutins auxquels vous "
        "participez.\n\nSi vous êtes dans l'une de ces situations, choisissez-la :"
    )


def ambiguous_category(name: str) -> str:
    return (
        f"« {name} » recouvre plusieurs situations qui ne votent pas aux mêmes scrutins. "
        "Laquelle est la vôtre ? (Votre profil électeur l'indique.)"
    )


def scrutin_voters(scrutin: ScrutinInfo, all_categories: list[str]) -> str:
    head = f"**{scrutin.code}** : {scrutin.title}.\n{scrutin.role}"
    if set(scrutin.voters) == set(all_categories):
        return f"{head}\nToutes les catégories de personnel votent à ce scrutin."
    voters = "\n".join(f"- {name}" for name in scrutin.voters)
    return f"{head}\nVotent à ce scrutin :\n{voters}"


def webmail(academie: AcademieInfo) -> str:
    return (
        f"**{academie.name}** : messagerie professionnelle **{academie.webmail_host}**\n"
        f"Mot de passe de messagerie oublié : lien « {academie.password_recovery} » sur la page "
        "de connexion de cette messagerie."
    )


def intent_button(title: str, intent: str) -> dict[str, str]:
    return {"title": title, "payload": f"/{intent}"}


def entity_button(title: str, entity: str, value: str) -> dict[str, str]:
    return {
        "title": title,
        "payload": "/inform" + json.dumps({entity: value}, ensure_ascii=False),
    }
