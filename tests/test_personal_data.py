"""Validators of the account chores, redaction of free text, and the encrypted vault."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.db import create_schema, make_engine
from bot.personal_data import parsing
from bot.personal_data.redaction import redact
from bot.personal_data.vault import Vault

TODAY = date(2018, 11, 30)
DOMAINS = ["ac-lyon.fr", "ac-creteil.fr", "ac-aix-marseille.fr", "ac-reunion.fr"]


@pytest.mark.parametrize(
    ("typed", "e164"),
    [
        ("06 12 34 56 78", "+33612345678"),
        ("06.12.34.56.78", "+33612345678"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("0033612345678", "+33612345678"),
        ("07 81 23 45 67", "+33781234567"),
        ("0692 12 34 56", "+262692123456"),  # La Réunion, typed without its country code
        ("0690 12 34 56", "+590690123456"),  # Guadeloupe
        ("+44 7911 123456", "+447911123456"),  # abroad, with its code
    ],
)
def test_mobile_numbers_are_normalised_to_e164(typed, e164):
    parsed = parsing.parse_phone(typed)
    assert parsed.ok and parsed.value == e164
    assert parsed.masked.endswith(e164[-2:]) and e164[-6:-2] not in parsed.masked


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("01 45 67 89 10", "phone_not_mobile"),  # a landline cannot get an SMS
        ("0262 12 34 56", "phone_not_mobile"),
        ("0612", "phone_invalid"),
        ("06 12 34 56 78 90 12 34", "phone_invalid"),
        ("pas de portable", "phone_invalid"),
    ],
)
def test_numbers_that_cannot_get_an_sms_are_refused(typed, problem):
    assert parsing.parse_phone(typed).problem == problem


def test_numen_is_normalised_and_masked():
    parsed = parsing.parse_numen(" 01 e 9501234 abc ")
    assert parsed.value == "01E9501234ABC"
    assert parsed.masked.endswith("ABC") and "9501234" not in parsed.masked
    assert parsing.parse_numen("01E950123ABC").details == {"length": "12"}
    assert parsing.parse_numen("0123456789012").problem == "numen_format"


@pytest.mark.parametrize(
    "typed", ["12/03/1980", "12-03-1980", "12.3.1980", "1980-03-12", "12031980", "12 mars 1980"]
)
def test_birth_dates_in_usual_forms(typed):
    parsed = parsing.parse_birth_date(f"je suis née le {typed}", TODAY)
    assert parsed.value == "1980-03-12"
    assert parsed.masked == "••/••/1980"


def test_written_out_dates_accept_accents_and_first_day():
    assert parsing.parse_birth_date("1er février 1975", TODAY).value == "1975-02-01"
    assert parsing.parse_birth_date("3 aout 1966", TODAY).value == "1966-08-03"


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("31/02/1980", "date_invalid"),
        ("12/03/80", "date_two_digit_year"),
        ("12/03/2015", "date_implausible"),
        ("12/03/1890", "date_implausible"),
        ("le mois dernier", "date_format"),
    ],
)
def test_impossible_birth_dates_are_refused(typed, problem):
    assert parsing.parse_birth_date(typed, TODAY).problem == problem


def test_professional_addresses_of_the_academies_only():
    ok = parsing.parse_pro_email("Marie.Dupont@AC-Lyon.fr", DOMAINS)
    assert ok.value == "marie.dupont@ac-lyon.fr" and ok.masked == "m•••@ac-lyon.fr"
    assert parsing.parse_pro_email("marie@gmail.com", DOMAINS).problem == "email_personal"
    typo = parsing.parse_pro_email("marie@ac-lyom.fr", DOMAINS)
    assert typo.problem == "email_domain_typo" and typo.details == {"domain": "ac-lyon.fr"}
    assert parsing.parse_pro_email("marie@ac-lyon.com", DOMAINS).details["domain"] == "ac-lyon.fr"
    assert parsing.parse_pro_email("marie@univ-paris.fr", DOMAINS).problem == "email_not_academic"
    assert parsing.parse_pro_email("marie arobase lyon", DOMAINS).problem == "email_format"


def test_redaction_replaces_every_personal_value_and_keeps_them_aside():
    message = "numen 01E9501234ABC, tel 06 12 34 56 78, née le 12/03/1980, marie.d@ac-lyon.fr"
    redacted = redact(message, TODAY)
    for value in ("01E9501234ABC", "06 12 34 56 78", "12/03/1980", "marie.d"):
        assert value not in redacted.text
    assert redacted.text == (
        "numen NUMEN_MASQUE, tel TELEPHONE_MASQUE, née le DATE_MASQUEE, adresse_masquee@ac-lyon.fr"
    )
    assert redacted.values == {
        "numen": "01E9501234ABC",
        "phone": "0612345678",  # as read: digits only
        "birth_date": "12/03/1980",
        "email": "marie.d@ac-lyon.fr",
    }


@pytest.mark.parametrize(
    "message",
    [
        "le vote se termine le 6/12/2018 ?",  # a date of the campaign is not a birth date
        "je bosse dans le 93",
        "webmail ac-lyon",
        "mdp trop court c koi la regle",
        "c kan le vote",
        "<script>alert(1)</script>",
        "SELECT * FROM voters; --",
        "je suis PE depuis 2005",
    ],
)
def test_ordinary_questions_pass_unchanged(message):
    assert redact(message, TODAY).text == message


@pytest.mark.parametrize(
    "message",
    ["mon mot de passe est Toto2018!", "Abcdefg123", "mdp : Xk9#pLm2q", "voilà Marie1980"],
)
def test_a_message_holding_a_password_is_not_forwarded(message):
    redacted = redact(message, TODAY)
    assert redacted.password and redacted.text == "" and redacted.values == {}


def test_mistyped_numen_and_spaced_numen_are_redacted_too():
    assert redact("01E950123ABC", TODAY).text == "NUMEN_MASQUE"
    assert redact("01 E 950 1234 ABC", TODAY).text == "NUMEN_MASQUE"


def test_the_vault_encrypts_expires_and_forgets(tmp_path: Path):
    database = tmp_path / "vault.db"
    vault = Vault(create_schema(f"sqlite:///{database}"), Fernet.generate_key(), ttl_seconds=60)
    vault.put("voter-1", {"numen": "01E9501234ABC", "phone": "0612345678"})
    vault.put("voter-1", {"numen": "02E9501234ABC"})
    assert vault.get("voter-1", "numen") == "02E9501234ABC"
    assert vault.get("voter-2", "numen") is None
    raw = database.read_bytes()
    assert b"9501234" not in raw and b"0612345678" not in raw and b"voter-1" not in raw
    vault.forget("voter-1", ["numen"])
    assert vault.get("voter-1", "numen") is None and vault.get("voter-1", "phone") == "0612345678"
    expired = Vault(make_engine(f"sqlite:///{database}"), Fernet.generate_key(), ttl_seconds=-1)
    expired.put("voter-3", {"phone": "0700000000"})
    assert expired.get("voter-3", "phone") is None
    assert expired.get("voter-1", "phone") is None  # another key (a restart): unreadable
