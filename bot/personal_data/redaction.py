"""Find personal values in a free-text message and replace them before anyone stores it.

The gateway runs `redact` on every user message before it reaches Rasa: Rasa's tracker store,
logs and NLU then only ever see placeholders (`NUMEN_MASQUE`...), while the values go to the
encrypted vault for the action that needs them. Values are found by `recognition.find`, the
reader the forms' parsers use too. A message that says it holds a password is not forwarded at
all (fail closed: in doubt, it is a password).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from bot.personal_data import recognition
from bot.personal_data.recognition import Found

PLACEHOLDERS = {
    "numen": "NUMEN_MASQUE",
    "phone": "TELEPHONE_MASQUE",
    "birth_date": "DATE_MASQUEE",
}
EMAIL_LOCAL_PLACEHOLDER = "adresse_masquee"
BIRTH_YEAR_AGE = 14  # a four-digit year this many years back or more is a birth year

# A password by the seed's rule: 8 to 64 characters with a lower case letter, a capital, a digit.
PASSWORD_LIKE = re.compile(r"(?=\S*[a-z])(?=\S*[A-Z])(?=\S*\d)\S{8,64}")
# Read on the folded text (lower case, no accents, plain apostrophes).
_KEYWORD = (
    r"(?:mots?[ -]*d[e']?[ -]*passe|motdepasse|mdp|m\.d\.p\.?|pass(?:word|wd)?|pwd"
    r"|code(?![ ]+(?:postal|departement|insee|naf|rome)))"
)
_QUALIFIER = (
    r"(?:[ ]+(?:electeur|electrice|electoral|provisoire|temporaire|actuel|actuelle|nouveau"
    r"|ancien|secret|perso|personnel|initial|d'acces|de[ ]+connexion|du[ ]+portail|de[ ]+vote"
    r"|pour[ ]+voter|elections?|elec|de[ ]+l'espace(?:[ ]+electeur)?|du[ ]+site|a[ ]+moi))*"
)
_CONNECTOR = (
    r"(?:[ ]*,?[ ]*(?::|=|->|=>)[ ]*"
    r"|[ ]*,?[ ]+(?:est|c'est|c[ ]+est|cest|c|ce[ ]+sera|sera|etait|c'etait|is)(?![a-z])"
    r"[ ]*:?[ ]*)"
)
# « mon mot de passe électeur c'est soleil2018 », « voici mon code : 4821 »
PASSWORD_STATED = re.compile(rf"\b{_KEYWORD}{_QUALIFIER}{_CONNECTOR}(?P<token>\S+)")
# « mdp Xk9#pL! » (no verb: the token itself must look like a password)
PASSWORD_NAMED = re.compile(rf"\b{_KEYWORD}{_QUALIFIER}[ ]+(?P<token>\S+)")
# « soleil2018 c'est mon mot de passe »
PASSWORD_BEFORE = re.compile(
    rf"(?P<token>\S+)[ ]+(?:est|c'est|cest|c[ ]+est|=)[ ]+(?:mon|ma|le|mes)[ ]+{_KEYWORD}\b"
)
PASSWORD_SYMBOLS = set("!#$%&*+=@^~|<>{}[]\\/;§£€¤")
TRAILING_PUNCTUATION = ".,;:?!)»\"'…"
MIN_PASSWORD_CHARS = 4
# Words that follow « mot de passe (est) » in a question about it, not a password (folded).
ORDINARY_WORDS = frozenset(
    """
    a accepte active ancien au aussi avec bien bizarre bloque bon ca caractere caracteres ce
    cela celle celui cense change chiffre chiffres combien comment compte confidentiel correct
    court d de deja demande desactive dans des different difficile doit du elle en encore
    envoye errone est et etre expire faible fausse faut faux fonctionne fort genre identique
    il impossible inconnu incorrect introuvable invalide je juste l la le les lettre lettres
    leur long ma majuscule majuscules mal marche mauvais me meme mes minimum maximum minuscule
    minuscules modifie mon ne non normalement notre nouveau nul obligatoire ok on ou oublie
    oui par pareil pas perdu personnel peut plus possible pour pourquoi provisoire quand que
    quel quelle quels quelles qui quoi recu refuse reconnu requis necessaire sa sans secret
    securise sensible ses si simple son sont sur svp stp merci temporaire ton toujours tout
    tres trop un une valide verrouille vide votre vraiment y
    """.split()  # noqa: SIM905 (a block of words is easier to extend than a list)
)


@dataclass(frozen=True)
class Redacted:
    """The message as Rasa may see it, the first value of each kind, and a password flag."""

    text: str
    values: dict[str, str] = field(default_factory=dict)
    password: bool = False


def redact(text: str, today: date) -> Redacted:
    masked = [f for f in recognition.find(text) if not _campaign_date(f, today)]
    # Judged on the text with values masked, except tokens only long and digit-heavy: those may
    # be passwords.
    if holds_a_password(_replace(text, [f for f in masked if not f.loose])):
        return Redacted("", {}, True)
    values: dict[str, str] = {}
    for found in masked:
        if not found.value.startswith(f"{EMAIL_LOCAL_PLACEHOLDER}@"):
            values.setdefault(_kind(found), found.value)
    return Redacted(_replace(text, masked), values)


def holds_a_password(text: str) -> bool:
    """The message gives a password: by the seed's rule, or after words that announce one."""
    if any(PASSWORD_LIKE.fullmatch(_strip(word)) for word in text.split() if _shareable(word)):
        return True
    folded = recognition.fold(text)
    stated = (m["token"] for m in PASSWORD_STATED.finditer(folded))
    if any(_could_be_password(token) for token in stated):
        return True
    named = (m["token"] for m in PASSWORD_NAMED.finditer(folded))
    before = (m["token"] for m in PASSWORD_BEFORE.finditer(folded))
    return any(_looks_like_password(token) for token in (*named, *before))


def _shareable(word: str) -> bool:
    """A word that is not a placeholder, an e-mail address or a link."""
    return "@" not in word and "://" not in word and _strip(word) not in PLACEHOLDERS.values()


def _strip(token: str) -> str:
    return token.strip("«»\"'()").rstrip(TRAILING_PUNCTUATION)


def _could_be_password(token: str) -> bool:
    """After « mot de passe est »: anything but a short or an ordinary word of a question."""
    word = _strip(token)
    return len(word) >= MIN_PASSWORD_CHARS and not _ordinary(word)


def _looks_like_password(token: str) -> bool:
    """Without a verb: a token with a digit or a symbol (« mdp xxx! »), not an ordinary word."""
    body = token.strip("«»\"'(").rstrip(".,;:?…»\"')")  # a "!" typed in the token counts
    if len(body) < MIN_PASSWORD_CHARS or _ordinary(_strip(token)):
        return False
    return any(c.isdigit() or c in PASSWORD_SYMBOLS for c in body)


def _ordinary(word: str) -> bool:
    """A placeholder, an address, or a word of a question (read folded)."""
    if not _shareable(word) or word.upper() in PLACEHOLDERS.values():
        return True
    return word in ORDINARY_WORDS or word.rstrip("s") in ORDINARY_WORDS


def _campaign_date(found: Found, today: date) -> bool:
    """A date of the campaign (not a birth date) stays readable."""
    if found.kind != "date":
        return False
    year = found.date_parts[2]
    return len(year) == 4 and int(year) > today.year - BIRTH_YEAR_AGE


def _kind(found: Found) -> str:
    return "birth_date" if found.kind == "date" else found.kind


def _placeholder(found: Found) -> str:
    if found.kind == "email":
        return f"{EMAIL_LOCAL_PLACEHOLDER}@{found.value.partition('@')[2]}"
    return PLACEHOLDERS[_kind(found)]


def _replace(text: str, found: Iterable[Found]) -> str:
    spans = sorted((start, end, _placeholder(f)) for f in found for start, end in f.spans)
    out, last = [], 0
    for start, end, placeholder in spans:
        out.append(text[last:start])
        out.append(placeholder)
        last = end
    out.append(text[last:])
    return "".join(out)
