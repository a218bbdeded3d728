"""Find personal values in what a voter typed: the one reader behind redaction and the parsers.

The gateway's redaction (`redaction.py`) and the forms' parsers (`parsing.py`) both read text
through `find`, so a value a parser would accept is a value redaction has masked first
(tests/test_privacy.py keeps that property). The text is read after `normalise`: full-width
forms (NFKC), every kind of space, dash and apostrophe, case and accents, digits of any script;
numbers may hold separators (spaces of any count, dots, commas, dashes, slashes) and e-mails may
be spaced or spelled out (« jean point dupont arobase ac-lyon.fr »).

Pure functions, no French sentences: `Found` says what kind of value sits where, as it was read.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import phonenumbers

MONTHS = {
    "janvier": 1, "fevrier": 2, "mars": 3, "avril": 4, "mai": 5, "juin": 6, "juillet": 7,
    "aout": 8, "septembre": 9, "octobre": 10, "novembre": 11, "decembre": 12,
    "janv": 1, "fev": 2, "fevr": 2, "avr": 4, "juil": 7, "sept": 9, "oct": 10, "nov": 11,
    "dec": 12,
}  # fmt: skip
APOSTROPHES = "’‘ʼ`´′‛"

# Inside a number: spaces of any count, or one of the separators with spaces around it.
SEP = r"(?:[ ]*[.,\-/_()][ ]*|[ ]+)"
NUMBER_RUN = re.compile(rf"(?<![a-z0-9])(?:\+[ ]*)?\d+(?:{SEP}\d+)*")
DIGIT_GROUP = re.compile(r"\d+")
# A NUMEN (2 digits, a letter, 7 digits, 3 letters) with separators anywhere; then anything
# shaped like one with a character too many or too few.
_S = rf"{SEP}?"
NUMEN_STRICT = re.compile(
    rf"(?<![a-z0-9@])\d{_S}\d{_S}[a-z]{_S}(?:\d{_S}){{6}}\d{_S}[a-z](?:{_S}[a-z]){{2}}"
    r"(?![a-z0-9@])"
)
NUMEN_LIKE = re.compile(
    rf"(?<![a-z0-9@])\d{_S}\d?{_S}[a-z]{_S}(?:\d{_S}){{5,7}}\d{_S}[a-z](?:{_S}[a-z]){{1,3}}"
    r"(?![a-z0-9@])"
)
# Any other token of 10 to 16 letters and digits with at least 5 digits: a mistyped NUMEN.
ALNUM_TOKEN = re.compile(r"(?<![a-z0-9@/.\-_])[a-z0-9]{10,16}(?![a-z0-9@])")
ALNUM_MIN_DIGITS = 5
# E-mails: `@`, « arobase » or « (at) », spaces around them, « point » for a dot.
_DOT = r"(?:\.|[ ]+point[ ]+)"
_AT = r"(?:[ ]*@[ ]*|[ ]+arr?obase?[ ]+|[ ]*[(\[][ ]*at[ ]*[)\]][ ]*)"
EMAIL = re.compile(
    rf"(?<![a-z0-9_+'.\-])(?P<local>[a-z0-9_+'\-]+(?:{_DOT}[a-z0-9_+'\-]+)*)"
    rf"{_AT}(?P<domain>[a-z0-9\-]+(?:(?:\.|[ ]+point[ ]+)[a-z0-9\-]+)+)(?![a-z0-9\-])"
)
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
_WS = r"(?:[ ]*[.,\-/][ ]*|[ ]+)"
# Not a comma, and no digits after the year: « 2 janvier, 06 12 … » is a day, then a phone.
_YEAR_GAP = r"(?:[ ]*[.\-/][ ]*|[ ]+)"
WRITTEN_DATE = re.compile(
    rf"(?<![a-z0-9])(?P<day>\d{{1,2}})(?:er)?{_WS}(?P<month>{_MONTH})\.?{_YEAR_GAP}"
    rf"(?P<year>[12]\d{{3}}|\d{{2}})(?![0-9])(?!{SEP}\d)"
)
DAY_AND_MONTH = re.compile(rf"(?<![a-z0-9])(?P<day>\d{{1,2}})(?:er)?{_WS}(?P<month>{_MONTH})\b")
DATE_YEAR = re.compile(r"^[12]\d{3}$")
BIRTH_YEAR = re.compile(r"^(?:19|20)\d\d$")  # alone, next to « 12 mars »
NATIONAL_DIGITS = 10
MAX_PHONE_DIGITS = 15
MIN_NUMBER_DIGITS = 8  # a longer unexplained number is masked (as a phone)


@dataclass(frozen=True)
class Normalised:
    """The folded text, and for each of its characters the index of its source character."""

    text: str
    origin: tuple[int, ...]

    def source_span(self, start: int, end: int) -> tuple[int, int]:
        return self.origin[start], self.origin[end - 1] + 1


def fold_char(char: str) -> str:
    """One character as the recogniser reads it (maybe several, maybe none)."""
    if char in APOSTROPHES:
        return "'"
    if char.isspace():
        return " "
    category = unicodedata.category(char)
    if category == "Pd" or char == "−":
        return "-"
    if category == "Nd":
        return str(unicodedata.digit(char))
    if category == "Cf":  # zero-width characters
        return ""
    if char == "·":
        return "."
    compatible = unicodedata.normalize("NFKC", char)
    if compatible != char:
        return "".join(fold_char(c) for c in compatible)
    decomposed = unicodedata.normalize("NFKD", char.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def normalise(text: str) -> Normalised:
    out: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        folded = fold_char(char)
        out.append(folded)
        origin.extend([index] * len(folded))
    return Normalised("".join(out), tuple(origin))


def fold(text: str) -> str:
    """Lower case without accents, full-width forms and typographic apostrophes read plainly."""
    return normalise(text).text


@dataclass(frozen=True)
class Found:
    """A value in the text: its kind, where it is (spans of the source text) and how it reads.

    `value` is what the parsers check: an e-mail address, a NUMEN's letters and digits, a
    phone's digits (with `+` when international), a date as `jj/mm/aaaa` (or `jj/mm/aa`).
    `loose` marks a token that is only long and digit-heavy (maybe a mistyped NUMEN, maybe a
    password)."""

    kind: str  # "email", "numen", "phone" or "date"
    spans: tuple[tuple[int, int], ...]
    value: str
    loose: bool = False

    @property
    def start(self) -> int:
        return min(start for start, _ in self.spans)

    @property
    def date_parts(self) -> tuple[int, int, str]:
        day, month, year = self.value.split("/")
        return int(day), int(month), year


def find(text: str) -> list[Found]:
    """Every personal value in `text`, in reading order, none overlapping another."""
    norm = normalise(text)
    work = list(norm.text)
    found: list[tuple[str, list[tuple[int, int]], str, bool]] = []

    def claim(kind: str, spans: list[tuple[int, int]], value: str, loose: bool = False) -> None:
        found.append((kind, spans, value, loose))
        for start, end in spans:
            work[start:end] = "\0" * (end - start)

    def scan(pattern: re.Pattern[str]):
        return list(pattern.finditer("".join(work)))

    for match in scan(EMAIL):
        local = re.sub(r"[ ]+point[ ]+", ".", match["local"])
        domain = re.sub(r"[ ]*(?:\.|[ ]point[ ])[ ]*", ".", match["domain"])
        claim("email", [match.span()], f"{local}@{domain}")
    for pattern in (NUMEN_STRICT, NUMEN_LIKE):
        for match in scan(pattern):
            claim("numen", [match.span()], re.sub(r"[^a-z0-9]", "", match[0]).upper())
    for match in scan(ALNUM_TOKEN):
        token = match[0]
        digits = sum(c.isdigit() for c in token)
        if ALNUM_MIN_DIGITS <= digits < len(token):
            claim("numen", [match.span()], token.upper(), loose=True)
    for match in scan(WRITTEN_DATE):
        claim("date", [match.span()], _date_value(match["day"], match["month"], match["year"]))
    years: list[tuple[int, int, str]] = []
    for match in scan(NUMBER_RUN):
        for kind, start, end, value in _read_number_run(match):
            if kind == "year":
                years.append((start, end, value))
            else:
                claim(kind, [(start, end)], value)
    if years:  # « né en 1980 le 12 mars »: a day and month, the year elsewhere
        for index, match in enumerate(scan(DAY_AND_MONTH)):
            if index < len(years):
                start, end, year = years[index]
                spans = [(start, end), match.span()]
            else:  # more days than years: the nearest year, already masked
                year = min(years, key=lambda y: abs(y[0] - match.start()))[2]
                spans = [match.span()]
            claim("date", spans, _date_value(match["day"], match["month"], year))
    result = [
        Found(kind, tuple(norm.source_span(s, e) for s, e in sorted(spans)), value, loose)
        for kind, spans, value, loose in found
    ]
    return sorted(result, key=lambda f: f.start)


def first(text: str, kind: str) -> Found | None:
    """The first value of `kind` in `text` (as redaction reads it), if any."""
    return next((f for f in find(text) if f.kind == kind), None)


def _date_value(day: str, month: str, year: str) -> str:
    month_number = int(month) if month.isdigit() else MONTHS[month]
    return f"{int(day):02d}/{month_number:02d}/{year}"


# --- Numbers: phones, dates, and long numbers nobody explained -------------------------------


@dataclass(frozen=True)
class _Group:
    digits: str
    start: int
    end: int
    separator: str  # the one before it, without its spaces ("" for spaces only)


def _read_number_run(match: re.Match[str]) -> list[tuple[str, int, int, str]]:
    """Split a run of digit groups into phones and dates (a phone first where both fit)."""
    base, groups, last = match.start(), [], 0
    for group in DIGIT_GROUP.finditer(match[0]):
        separator = match[0][last : group.start()].strip(" +")
        groups.append(_Group(group[0], base + group.start(), base + group.end(), separator))
        last = group.end()
    plus = match[0].startswith("+")
    out: list[tuple[str, int, int, str]] = []
    i = 0
    while i < len(groups):
        item = _item_at(groups, i, plus and i == 0)
        if item is not None:
            kind, j, value = item
            while kind == "phone" and j < len(groups) and groups[j].separator != ",":
                if _item_at(groups, j, False) is not None:
                    break
                value += groups[j].digits  # digits typed on after a phone belong to it
                j += 1
            start = match.start() if i == 0 else groups[i].start
            out.append((kind, start, groups[j - 1].end, value))
            i = j
            continue
        j = i + 1
        while j < len(groups) and _item_at(groups, j, False) is None:
            j += 1
        digits = "".join(g.digits for g in groups[i:j])
        if len(digits) >= MIN_NUMBER_DIGITS:
            out.append(("phone", groups[i].start, groups[j - 1].end, digits))
        elif j == i + 1 and BIRTH_YEAR.match(digits):
            out.append(("year", groups[i].start, groups[i].end, digits))
        i = j
    return out


def _item_at(groups: list[_Group], i: int, plus: bool) -> tuple[str, int, str] | None:
    """(kind, index after the item, value) of the phone or date starting at group `i`."""
    if plus or groups[i].digits.startswith("00"):
        return _international_phone(groups, i)
    return _phone_in_pairs(groups, i) or _numeric_date(groups, i) or _national_phone(groups, i)


def _international_phone(groups: list[_Group], i: int) -> tuple[str, int, str] | None:
    """The longest valid number after `+` or `00`, else every digit up to 15 (8 at least)."""
    digits = [g.digits for g in groups[i:]]
    digits[0] = digits[0].removeprefix("00")
    longest = i + 1
    for j in range(i + 1, len(groups) + 1):
        if len("".join(digits[: j - i])) > MAX_PHONE_DIGITS:
            break
        longest = j
    for j in range(longest, i, -1):
        candidate = "+" + "".join(digits[: j - i])
        try:
            valid = phonenumbers.is_valid_number(phonenumbers.parse(candidate, None))
        except phonenumbers.NumberParseException:
            valid = False
        if valid:
            return "phone", j, candidate
    candidate = "".join(digits[: longest - i])
    return ("phone", longest, "+" + candidate) if len(candidate) >= MIN_NUMBER_DIGITS else None


def _phone_in_pairs(groups: list[_Group], i: int) -> tuple[str, int, str] | None:
    """`06 12 34 56 78`, whatever the separators: never a date."""
    pairs = groups[i : i + 5]
    if (
        len(pairs) == 5
        and pairs[0].digits.startswith("0")
        and all(len(g.digits) == 2 for g in pairs)
    ):
        return "phone", i + 5, "".join(g.digits for g in pairs)
    return None


def _national_phone(groups: list[_Group], i: int) -> tuple[str, int, str] | None:
    """Ten digits starting with 0, grouped any way (`0692 12 34 56`, `0612345678`)."""
    if not groups[i].digits.startswith("0") or groups[i].digits.startswith("00"):
        return None
    digits = ""
    for j in range(i, len(groups)):
        digits += groups[j].digits
        if len(digits) == NATIONAL_DIGITS:
            return "phone", j + 1, digits
        if len(digits) > NATIONAL_DIGITS:
            return None
    return None


def _numeric_date(groups: list[_Group], i: int) -> tuple[str, int, str] | None:
    """jj/mm/aaaa, aaaa-mm-jj, jjmmaaaa (any separators); jj/mm/aa only at the end of a run."""
    parts = [g.digits for g in groups[i : i + 3]]
    separators = {g.separator for g in groups[i + 1 : i + 3]}
    if len(parts) == 3 and len(separators) == 1 and "," not in separators:
        day, month, year = parts
        if len(day) == 4 and len(month) <= 2 and len(year) <= 2 and separators != {""}:
            day, year = year, day  # aaaa-mm-jj, aaaa/mm/jj (not with spaces: a year, then more)
        short_year = len(year) == 2 and i + 3 == len(groups)
        if (
            len(day) <= 2
            and len(month) <= 2
            and (DATE_YEAR.match(year) or short_year)
            and _day_and_month(day, month)
        ):
            return "date", i + 3, _date_value(day, month, year)
    compact = groups[i].digits
    if len(compact) == 8:
        for day, month, year in ((compact[:2], compact[2:4], compact[4:]),
                                 (compact[6:], compact[4:6], compact[:4])):  # fmt: skip
            if DATE_YEAR.match(year) and _day_and_month(day, month):
                return "date", i + 1, _date_value(day, month, year)
    return None


def _day_and_month(day: str, month: str) -> bool:
    return 1 <= int(day) <= 31 and 1 <= int(month) <= 12
