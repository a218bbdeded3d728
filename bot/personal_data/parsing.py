"""Parse, normalise and mask the values a voter types in the two account chores.

Pure functions: no I/O, no French sentences (the actions word the problems). Each returns a
`Parsed` with either a normalised `value` and its `masked` form, or a `problem` code. Each
reads the text with `recognition.find`, as redaction does: a parser accepts only a value that
redaction would have masked.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import date

import phonenumbers

from bot.personal_data import recognition
from bot.personal_data.recognition import fold

MASK = "•"

NUMEN = re.compile(r"^\d{2}[A-Z]\d{7}[A-Z]{3}$")
NUMEN_LENGTH = 13

# Overseas mobiles are invalid under region FR: try the territories too.
PHONE_REGIONS = ("FR", "RE", "GP", "MQ", "GF", "YT", "PM", "BL", "MF", "NC", "PF", "WF")
MOBILE_TYPES = {
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
}
MIN_AGE, MAX_AGE = 16, 100

EMAIL = re.compile(r"^[a-z0-9](?:[a-z0-9._+'-]*[a-z0-9])?@([a-z0-9-]+(?:\.[a-z0-9-]+)+)$")
# Addresses of everyday providers: the voter gave a personal address, not the professional one.
PERSONAL_PROVIDERS = (
    "gmail", "yahoo", "hotmail", "outlook", "live", "orange", "wanadoo", "free", "sfr",
    "laposte", "icloud", "me", "aol", "bbox", "neuf", "gmx", "protonmail", "proton", "msn",
)  # fmt: skip


@dataclass(frozen=True)
class Parsed:
    """A parsed value: `value` and `masked` when valid, else `problem` (and `details`)."""

    value: str | None = None
    masked: str | None = None
    problem: str | None = None
    details: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.problem is None


def parse_numen(text: str) -> Parsed:
    """A NUMEN: 2 digits, 1 letter, 7 digits, 3 letters (separators and case ignored)."""
    found = recognition.first(text, "numen")
    if found is not None and NUMEN.match(found.value):
        return Parsed(found.value, MASK * 10 + found.value[-3:])
    cleaned = found.value if found else re.sub(r"[^a-z0-9]", "", fold(text)).upper()
    if len(cleaned) != NUMEN_LENGTH:
        return Parsed(problem="numen_length", details={"length": str(len(cleaned))})
    return Parsed(problem="numen_format")


def parse_phone(text: str) -> Parsed:
    """A mobile number able to receive an SMS, as E.164 (French, overseas or international)."""
    found = recognition.first(text, "phone")
    raw = found.value if found else ""
    if raw.startswith("00"):
        raw = "+" + raw[2:]
    if not re.fullmatch(r"\+?\d{6,15}", raw):
        return Parsed(problem="phone_invalid")
    regions = (None,) if raw.startswith("+") else PHONE_REGIONS
    valid = None
    for region in regions:
        try:
            number = phonenumbers.parse(raw, region)
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            valid = valid or number
            if phonenumbers.number_type(number) in MOBILE_TYPES:
                e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
                return Parsed(e164, mask_phone(number))
    return Parsed(problem="phone_not_mobile" if valid else "phone_invalid")


def mask_phone(number: phonenumbers.PhoneNumber) -> str:
    """`+33 6 •• •• •• 78`: country code, first digit and last two digits shown."""
    shown = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    code, _, national = shown.partition(" ")
    digits = sum(c.isdigit() for c in national)
    out, seen = [], 0
    for char in national:
        if char.isdigit():
            seen += 1
            out.append(char if seen == 1 or seen > digits - 2 else MASK)
        else:
            out.append(char)
    return f"{code} {''.join(out)}"


def parse_birth_date(text: str, today: date) -> Parsed:
    """A real, plausible birth date: jj/mm/aaaa, aaaa-mm-jj, jjmmaaaa or « 12 mars 1980 »."""
    found = recognition.first(text, "date")
    if found is None:
        return Parsed(problem="date_format")
    day, month, year = found.date_parts
    if len(year) != 4:
        return Parsed(problem="date_two_digit_year")
    try:
        born = date(int(year), month, day)
    except ValueError:
        return Parsed(problem="date_invalid")
    age = today.year - born.year - ((today.month, today.day) < (born.month, born.day))
    if not MIN_AGE <= age <= MAX_AGE:
        return Parsed(problem="date_implausible")
    return Parsed(born.isoformat(), f"{MASK * 2}/{MASK * 2}/{born.year}")


def mask_email(address: str) -> str:
    """`m•••@ac-lyon.fr`: first character and domain."""
    local, _, domain = address.partition("@")
    return f"{local[:1]}{MASK * 3}@{domain}"


def parse_pro_email(text: str, domains: list[str]) -> Parsed:
    """A professional address of one of the académies (`domains`, e.g. `ac-lyon.fr`)."""
    found = recognition.first(text, "email")
    address = found.value if found else ""
    match = EMAIL.match(address)
    if not match:
        return Parsed(problem="email_format")
    domain = match.group(1)
    if domain in domains:
        return Parsed(address, mask_email(address))
    guess = difflib.get_close_matches(domain, domains, n=1, cutoff=0.8)
    if not guess and domain.startswith("ac-"):
        guess = difflib.get_close_matches(domain.rsplit(".", 1)[0] + ".fr", domains, n=1)
    if guess:
        return Parsed(problem="email_domain_typo", details={"domain": guess[0]})
    if domain.split(".")[0] in PERSONAL_PROVIDERS:
        return Parsed(problem="email_personal")
    return Parsed(problem="email_not_academic")
