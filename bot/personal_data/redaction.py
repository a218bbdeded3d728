"""Find personal values in a free-text message and replace them before anyone stores it.

The gateway runs `redact` on every user message before it reaches Rasa: Rasa's tracker store,
logs and NLU then only ever see placeholders (`NUMEN_MASQUE`...), while the values go to the
encrypted vault for the action that needs them. A message that looks like it holds a password
is not forwarded at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from bot.personal_data import parsing

PLACEHOLDERS = {
    "numen": "NUMEN_MASQUE",
    "phone": "TELEPHONE_MASQUE",
    "birth_date": "DATE_MASQUEE",
}
EMAIL_LOCAL_PLACEHOLDER = "adresse_masquee"

EMAIL = re.compile(r"[\w.+'-]+@([\w-]+(?:\.[\w-]+)+)", re.UNICODE)
# Shaped like a NUMEN, even with a digit or a letter too many or too few.
NUMEN_LIKE = re.compile(
    r"(?<![\w@])\d{2}[\s\-]?[A-Za-z][\s\-]?(?:\d[\s\-]?){6,8}[A-Za-z]{2,4}(?![\w@])"
)
# Any other token of 10-16 letters and digits with at least 5 digits (a mistyped NUMEN).
ALNUM_TOKEN = re.compile(r"(?<![\w@/.-])[A-Za-z0-9]{10,16}(?![\w@])")
# Phone-like: 8 to 15 digits, maybe a leading + or 00, separated by spaces, dots or dashes.
PHONE_LIKE = re.compile(r"(?<![\w+])(?:\+|00)?\d(?:[\s.\-]?\(?\d\)?){7,14}(?!\w)")
# A password by the seed's rule: 8 to 24 characters with a lower case letter, a capital, a digit.
PASSWORD_LIKE = re.compile(r"(?=\S*[a-z])(?=\S*[A-Z])(?=\S*\d)\S{8,64}")
PASSWORD_PHRASE = re.compile(
    r"\b(?:mot\s+de\s+passe|mdp|password|pwd)\s*(?:est|c'?est|=|:)\s*(\S{6,})", re.IGNORECASE
)
BIRTH_YEAR_AGE = 14  # a four-digit year this many years back or more is a birth year


@dataclass(frozen=True)
class Redacted:
    """The message as Rasa may see it, the first value of each kind, and a password flag."""

    text: str
    values: dict[str, str] = field(default_factory=dict)
    password: bool = False


def redact(text: str, today: date) -> Redacted:
    values: dict[str, str] = {}

    def keep(kind: str, value: str) -> None:
        values.setdefault(kind, value)

    def email(match: re.Match[str]) -> str:
        keep("email", match.group(0))
        return f"{EMAIL_LOCAL_PLACEHOLDER}@{match.group(1)}"

    def numen(match: re.Match[str]) -> str:
        keep("numen", match.group(0))
        return PLACEHOLDERS["numen"]

    def alnum(match: re.Match[str]) -> str:
        token = match.group(0)
        digits = sum(c.isdigit() for c in token)
        if digits >= 5 and digits < len(token):
            return numen(match)
        return token

    def birth_date(match: re.Match[str]) -> str:
        found = parsing.find_date(match.group(0))
        if found is None:
            return match.group(0)
        year = found[2]
        if year >= 0 and year > today.year - BIRTH_YEAR_AGE:
            return match.group(0)  # a date of the campaign, not a birth date
        keep("birth_date", match.group(0))
        return PLACEHOLDERS["birth_date"]

    def phone(match: re.Match[str]) -> str:
        keep("phone", match.group(0))
        return PLACEHOLDERS["phone"]

    redacted = EMAIL.sub(email, text)
    redacted = NUMEN_LIKE.sub(numen, redacted)
    redacted = ALNUM_TOKEN.sub(alnum, redacted)
    for pattern in (parsing.ISO_DATE, parsing.NUMERIC_DATE, parsing.COMPACT_DATE):
        redacted = pattern.sub(birth_date, redacted)
    redacted = _sub_written_dates(redacted, birth_date)
    redacted = PHONE_LIKE.sub(phone, redacted)
    password = bool(PASSWORD_PHRASE.search(redacted)) or any(
        PASSWORD_LIKE.fullmatch(word.strip(".,;:!?()«»\"'"))
        and word.strip(".,;:!?()«»\"'") not in PLACEHOLDERS.values()
        for word in redacted.split()
        if "@" not in word and "://" not in word
    )
    if password:
        return Redacted("", {}, True)
    return Redacted(redacted, values)


def _sub_written_dates(text: str, replace) -> str:
    """Written-out dates (« 12 mars 1980 »), found on the accent-free text, replaced in place."""
    folded = parsing.fold(text)
    if len(folded) != len(text):  # exotic characters: fall back to no replacement of this kind
        return text
    out, last = [], 0
    for match in parsing.WRITTEN_DATE.finditer(folded):
        original = text[match.start() : match.end()]
        out.append(text[last : match.start()])
        out.append(replace(_Span(original)))
        last = match.end()
    out.append(text[last:])
    return "".join(out)


class _Span:
    """The minimal `re.Match` interface used by the replacement callbacks."""

    def __init__(self, text: str) -> None:
        self._text = text

    def group(self, index: int = 0) -> str:
        return self._text
