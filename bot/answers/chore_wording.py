"""French wording of the two account chores: the voter-password reset and the voter-ID reissue.

Facts (limits, dates, address format) come from the knowledge base and are passed in.
"""

from __future__ import annotations

from bot.answers.wording import PARIS, intent_button
from bot.knowledge.store import Period
from bot.personal_data.parsing import Parsed

FIELD_NAMES = {
    "phone": "le numéro de portable",
    "numen": "le NUMEN",
    "birth_date": "la date de naissance",
    "email": "l'adresse e-mail",
}
FIELD_BUTTONS = {
    "phone": "Corriger le numéro",
    "numen": "Corriger le NUMEN",
    "birth_date": "Corriger la date de naissance",
}
WAY_OUT = (
    "Si vous n'y arrivez pas, tapez « annuler » : vous pourrez contacter l'assistance de votre "
    "académie ou demander à parler à une personne."
)


def reissue_offer(max_requests: str, period: Period) -> str:
    return (
        "Je peux demander pour vous l'envoi d'un **nouvel identifiant électeur**. Pour votre "
        "sécurité, il est envoyé **uniquement par SMS**, après vérification de votre NUMEN et de "
        f"votre date de naissance. La demande est possible **{max_requests} fois au plus**, "
        f"jusqu'au {period.end_text}{PARIS if period.end_has_time else ''}.\n"
        "Vous pouvez taper « annuler » à tout moment."
    )


def reissue_not_open(period: Period) -> str:
    return (
        "La demande d'un nouvel identifiant électeur n'est pas encore ouverte : elle le sera à "
        f"partir du {period.start_text}."
    )


def reissue_closed(period: Period) -> str:
    return (
        "La demande d'un nouvel identifiant électeur n'est plus possible : elle était ouverte "
        f"jusqu'au {period.end_text}{PARIS if period.end_has_time else ''}. Pour une situation "
        "particulière, contactez l'assistance de votre académie."
    )


def locked(minutes: int) -> str:
    return (
        "Pour protéger les comptes, les demandes sont suspendues après plusieurs vérifications "
        f"qui n'ont pas abouti. Réessayez dans {minutes} minute{'s' if minutes > 1 else ''}, ou "
        "contactez votre service RH académique pour vérifier votre NUMEN et votre date de "
        "naissance."
    )


def reset_offer(portal_url: str) -> str:
    return (
        "Je peux demander la **réinitialisation de votre mot de passe électeur** : un lien pour en "
        "choisir un nouveau sera envoyé sur votre messagerie professionnelle. (Vous pouvez aussi "
        f"le faire vous-même sur {portal_url}, lien « mot de passe oublié ? ».)\n"
        "Je ne vous demanderai jamais votre mot de passe. Tapez « annuler » à tout moment."
    )


def reset_not_open(period: Period) -> str:
    return (
        "L'espace électeur n'est pas encore ouvert : vous pourrez créer ou réinitialiser votre "
        f"mot de passe à partir du {period.start_text}."
    )


def reissue_summary(phone: str, numen: str, birth_date: str) -> tuple[str, list[dict]]:
    text = (
        "Je récapitule (les informations sont masquées) :\n"
        f"- portable : {phone}\n- NUMEN : {numen}\n- date de naissance : {birth_date}\n"
        "J'envoie la demande ?"
    )
    buttons = [{"title": "Oui, envoyer", "payload": "/affirm"}]
    buttons += correction_buttons()
    return text, buttons


def correction_buttons() -> list[dict]:
    buttons = [
        {"title": title, "payload": f'/correct_value{{"field":"{field}"}}'}
        for field, title in FIELD_BUTTONS.items()
    ]
    return [*buttons, intent_button("Annuler", "cancel")]


def what_to_correct() -> tuple[str, list[dict]]:
    return "Que faut-il corriger ?", correction_buttons()


def problem(parsed: Parsed, rules: dict[str, str]) -> str:
    """One sentence per problem found by `bot.personal_data.parsing`, with what to do next."""
    code = parsed.problem
    if code == "phone_invalid":
        return (
            "Je ne reconnais pas ce numéro de téléphone. Indiquez votre numéro de **portable** "
            "(par exemple 06 12 34 56 78 ; depuis les DROM-COM ou l'étranger, avec l'indicatif, "
            "par exemple +262 692 12 34 56)."
        )
    if code == "phone_not_mobile":
        return (
            "Ce numéro est une ligne fixe : le SMS ne peut être envoyé qu'à un **portable**. "
            "Indiquez un numéro de portable."
        )
    if code == "numen_length":
        return (
            f"Le NUMEN compte {rules['numen_longueur']} caractères ; j'en compte "
            f"{parsed.details['length']}. Vérifiez-le et saisissez-le à nouveau (votre service "
            "RH académique peut vous le donner)."
        )
    if code == "numen_format":
        return (
            f"Ce NUMEN n'a pas la bonne forme : {rules['numen_forme']} (par exemple "
            "12A3456789BCD). Vérifiez-le et saisissez-le à nouveau."
        )
    if code == "date_format":
        return (
            "Je ne reconnais pas cette date. Indiquez votre date de naissance au format "
            "jj/mm/aaaa (par exemple 12/03/1980) ou en toutes lettres (12 mars 1980)."
        )
    if code == "date_two_digit_year":
        return "Indiquez l'année de naissance sur 4 chiffres, par exemple 12/03/1980."
    if code == "date_invalid":
        return "Cette date n'existe pas. Vérifiez le jour et le mois (jj/mm/aaaa)."
    if code == "date_implausible":
        return "Cette date de naissance ne semble pas possible. Vérifiez l'année (jj/mm/aaaa)."
    address_form = rules["format_adresse_pro"]
    if code == "email_personal":
        return (
            "C'est une adresse personnelle. Il me faut votre adresse de messagerie "
            f"**professionnelle**, de la forme {address_form}."
        )
    if code == "email_domain_typo":
        return (
            "Le domaine de cette adresse ne correspond à aucune académie. Vouliez-vous dire "
            f"…@{parsed.details['domain']} ? Saisissez à nouveau votre adresse complète."
        )
    if code == "email_not_academic":
        return (
            "Cette adresse n'est pas une adresse d'académie. Il me faut votre adresse "
            f"professionnelle, de la forme {address_form}."
        )
    return (
        "Je ne reconnais pas d'adresse e-mail. Saisissez votre adresse professionnelle complète, "
        f"de la forme {address_form}."
    )


def reissue_sent(phone: str, masked_email: str | None, remaining: int | None) -> str:
    text = f"C'est fait : un SMS avec votre nouvel identifiant électeur a été envoyé au {phone}."
    if masked_email:
        text += f" Un e-mail de confirmation part vers {masked_email}."
    if remaining is not None:
        text += (
            f" Il vous reste {remaining} demande{'s' if remaining > 1 else ''} possible"
            f"{'s' if remaining > 1 else ''}."
        )
    return text


MISMATCH = (
    "Ces informations ne correspondent pas à celles de votre dossier : la demande n'a pas été "
    "envoyée. Vérifiez votre NUMEN et votre date de naissance, puis recommencez (« identifiant "
    "perdu »). En cas de doute, votre service RH académique peut vous confirmer votre NUMEN."
)


def limit_reached(max_requests: str) -> str:
    return (
        f"Vous avez déjà utilisé les {max_requests} demandes possibles de nouvel identifiant : je "
        "ne peux plus en faire. Contactez l'assistance de votre académie."
    )


# Said after a timeout too, when the portal may have done the work: a retry with the same
# values reuses the request's idempotency key (chores.idempotency_key), so nothing goes twice.
PORTAL_DOWN = (
    "Le service d'envoi ne répond pas pour le moment, et je ne sais pas si votre demande a été "
    "prise en compte. Réessayez dans quelques minutes avec les mêmes informations : elle ne sera "
    "pas envoyée deux fois. Si cela persiste, contactez l'assistance de votre académie."
)
EXPIRED = (
    "Par sécurité, les informations saisies ne sont gardées que quelques minutes, et elles ont "
    "expiré. Recommencez la demande (« identifiant perdu » ou « mot de passe oublié »)."
)
CANCELLED = "Demande annulée : rien n'a été envoyé, et les informations saisies sont effacées."


def reset_accepted(masked_email: str, webmail_host: str | None) -> str:
    text = (
        f"C'est demandé. Si {masked_email} correspond à un compte électeur, un e-mail avec un "
        "lien pour choisir un nouveau mot de passe électeur vient d'y être envoyé."
    )
    if webmail_host:
        text += f" Lisez-le dans votre messagerie professionnelle : **{webmail_host}**."
    return text + " Le lien n'est valable que peu de temps : utilisez-le rapidement."


def reset_rate_limited(minutes: int) -> str:
    return (
        "Plusieurs demandes ont déjà été faites pour cette adresse. Pour éviter les abus, "
        f"réessayez dans {minutes} minute{'s' if minutes > 1 else ''} ; vérifiez d'abord votre "
        "messagerie professionnelle, y compris les courriers indésirables."
    )
