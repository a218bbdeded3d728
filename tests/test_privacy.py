"""Personal values are masked whatever way a voter types them.

Generated NUMENs, mobiles (metropolitan, overseas, abroad), birth dates and e-mails, in every
spelling a voter may use, embedded in French sentences: redaction masks them all, keeps them for
the vault as the parsers read them, and a parser never accepts a value redaction let through.
The spellings are plain functions of a `random.Random`, so the live test
(tests/test_chores_live.py) types the same kinds of values through the whole stack.
"""

from __future__ import annotations

import asyncio
import random
import re
from dataclasses import dataclass
from datetime import date

import phonenumbers
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from rasa_sdk.executor import CollectingDispatcher

from bot.actions.chores import ActionSubmitVoterIdReissue, ChoreServices, ValidateVoterIdReissueForm
from bot.db import PORTAL, create_schema
from bot.knowledge import Knowledge, load_kb
from bot.personal_data import parsing
from bot.personal_data.recognition import fold
from bot.personal_data.redaction import EMAIL_LOCAL_PLACEHOLDER, holds_a_password, redact
from bot.personal_data.vault import Vault
from bot.portal import models as portal_models
from bot.portal.client import PortalClient
from bot.portal.registry import VoterRow, save_voters
from bot.portal.settings import Limits
from bot.portal.simulated import create_app
from tests.actions_helpers import said, tracker
from tests.conftest import KB

TODAY = date(2018, 11, 30)
DOMAINS = ["ac-lyon.fr", "ac-creteil.fr", "ac-aix-marseille.fr", "ac-reunion.fr", "ac-lille.fr"]
EXAMPLES = settings(max_examples=300, deadline=None)

# --- Values and the ways they are typed --------------------------------------------------------

# Separators a voter (or a phone's keyboard) puts inside a number.
SEPARATORS = [
    " ",
    "  ",
    "   ",
    ".",
    ",",
    "-",
    "/",
    " - ",
    " . ",
    "\u00a0",
    "\u202f",
    "\u2009",
    "\t",
]
NUMEN_SEPARATORS = ["", " ", "  ", ".", "-", " . ", "\u00a0"]
FULL_WIDTH = {c: chr(ord(c) + 0xFEE0) for c in "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"}
# (country code, national prefix) of mobiles: metropolitan, La Réunion, Guadeloupe, Martinique,
# Guyane, Mayotte; then abroad, typed only with the country code.
FRENCH_MOBILES = [
    ("33", "06"), ("33", "07"), ("262", "0692"), ("262", "0693"), ("590", "0690"),
    ("596", "0696"), ("594", "0694"), ("262", "0639"),
]  # fmt: skip
FOREIGN_MOBILES = [("44", "07911", 11), ("32", "0470", 10), ("49", "0151", 12)]
MONTH_NAMES = [
    "janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
    "octobre", "novembre", "décembre",
]  # fmt: skip
FIRST_NAMES = ["jean", "marie", "lea", "camille", "thomas", "elodie", "karim", "sophie"]
LAST_NAMES = ["dupont", "martin", "bernard", "nguyen", "leroy", "moreau", "benali"]
SENTENCES = [
    "{}", "{} merci", "c’est {}", "voilà : {}", "Bonjour, {} .", "euh {} je crois",
    "alors {} ok ?", "(({}))", "le voici {} !", "{}\n",
]  # fmt: skip


@dataclass(frozen=True)
class Typed:
    """A value as the parsers must read it (`expected`), as typed (`text`), its kind and the
    way it was typed (`style`)."""

    kind: str  # numen, phone, birth_date, email
    text: str
    expected: str
    style: str

    def needles(self) -> set[str]:
        """Spellings that must be found in no store: as typed, digits only, with separators."""
        if self.kind == "email":
            return {self.text, self.expected, self.expected.partition("@")[0]}
        if self.kind == "birth_date":
            year, month, day = self.expected.split("-")
            return {self.text, self.expected, f"{day}/{month}/{year}", f"{day}{month}{year}"}
        if self.kind == "phone":
            national = str(phonenumbers.parse(self.expected).national_number)
            digits = [self.expected, self.expected[1:], national, "0" + national]
        else:
            value = self.expected
            spaced = f"{value[:2]} {value[2]} {value[3:10]} {value[10:]}"
            return {self.text, value, value.lower(), spaced, spaced.replace(" ", ".")}
        pairs = [" ".join(d[i : i + 2] for i in range(0, len(d), 2)) for d in digits[2:]]
        return {self.text, *digits, *pairs, *(p.replace(" ", ".") for p in pairs)}


def numen(rng: random.Random) -> Typed:
    digits = "".join(rng.choice("0123456789") for _ in range(9))
    letters = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4))
    value = f"{digits[:2]}{letters[0]}{digits[2:]}{letters[1:]}"
    groups = [value[:2], value[2], value[3:10], value[10:]]
    style = rng.choice(["groups", "mixed", "spaced", "compact"])
    if style == "spaced":  # « 1 2 A 1 2 3 … »
        text = " ".join(value)
    elif style == "compact":
        text = value
    else:
        separator = rng.choice(NUMEN_SEPARATORS)
        text = groups[0]
        for group in groups[1:]:
            text += (rng.choice(NUMEN_SEPARATORS) if style == "mixed" else separator) + group
    return Typed("numen", _case_and_width(rng, text), value, f"NUMEN {style}")


def phone(rng: random.Random) -> Typed:
    """A valid mobile number (checked with `phonenumbers`), typed in one of many ways."""
    while True:
        if rng.random() < 0.8:
            code, prefix = rng.choice(FRENCH_MOBILES)
            national = prefix + "".join(rng.choice("0123456789") for _ in range(10 - len(prefix)))
            abroad = False
        else:
            code, prefix, length = rng.choice(FOREIGN_MOBILES)
            rest = length - len(prefix)
            national = prefix + "".join(rng.choice("0123456789") for _ in range(rest))
            abroad = True
        number = phonenumbers.parse(f"+{code}{national[1:]}")
        mobile = phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.MOBILE
        if phonenumbers.is_valid_number(number) and mobile:
            break
    e164 = f"+{code}{national[1:]}"
    separator = rng.choice(SEPARATORS)
    if abroad or rng.random() < 0.3:  # with the country code: +33 6 12 34 56 78, 0033 6…
        lead = rng.choice(["+", "00", "+ "])
        rest = national[1:]
        groups = [rest[: len(rest) % 2 or 1], *_pairs(rest[len(rest) % 2 or 1 :])]
        text = lead + code + rng.choice([" ", separator]) + separator.join(groups)
        style = f"{lead.strip()}{code}"
    else:
        grouping = rng.choice(["pairs", "pairs", "four-then-pairs", "compact"])
        style = f"{prefix} {grouping}"
        if grouping == "compact":
            text = national
        elif grouping == "four-then-pairs":  # 0692 12 34 56
            text = separator.join([national[:4], *_pairs(national[4:])])
        else:
            text = separator.join(_pairs(national))
    return Typed("phone", _case_and_width(rng, text), e164, f"phone {style}")


def birth_date(rng: random.Random) -> Typed:
    born = date(rng.randint(1930, 2000), rng.randint(1, 12), rng.randint(1, 28))
    day, month, year = f"{born.day:02d}", f"{born.month:02d}", str(born.year)
    day = day.lstrip("0") if rng.random() < 0.3 else day
    month_name = MONTH_NAMES[born.month - 1]
    month_name = month_name.capitalize() if rng.random() < 0.3 else month_name
    first = "1er" if born.day == 1 and rng.random() < 0.5 else day
    separator = rng.choice(["/", "-", ".", " ", "  ", " / ", "\u00a0"])
    year_first = separator if separator.strip() else "-"  # « 1980 03 12 » is a year, then more
    style, text = rng.choice(
        [
            ("jj/mm/aaaa", separator.join([day, month, year])),
            ("aaaa/mm/jj", year_first.join([year, month, day])),
            ("jjmmaaaa", f"{day}{month}{year}" if len(day) == 2 else f"{day}/{month}/{year}"),
            ("12 mars 1980", f"{first} {month_name} {year}"),
            ("12-mars-1980", f"{first}-{month_name}-{year}"),
            ("né en 1980 le 12 mars", f"né en {year} le {first} {month_name}"),
            ("née le 12 mars, en 1980", f"née le {first} {month_name}, en {year}"),
        ]
    )  # fmt: skip
    text = _case_and_width(rng, text, letters=False)
    return Typed("birth_date", text, born.isoformat(), f"date {style}")


def email(rng: random.Random) -> Typed:
    local = rng.choice(FIRST_NAMES) + rng.choice([".", "-", "_", ""]) + rng.choice(LAST_NAMES)
    domain = rng.choice(DOMAINS)
    at = rng.choice(["@", " @ ", "@ ", "＠", " arobase ", " (at) "])
    shown_local = local.replace(".", " point ") if rng.random() < 0.3 else local
    shown_domain = (
        domain.replace(".", " point ") if "arobase" in at and rng.random() < 0.5 else domain
    )
    text = shown_local + at + shown_domain
    text = text.upper() if rng.random() < 0.1 else text
    style = f"e-mail {at.strip()}" + (" point" if " point " in text.lower() else "")
    return Typed("email", text, f"{local}@{domain}", style)


GENERATORS = {"numen": numen, "phone": phone, "birth_date": birth_date, "email": email}


def sentence(rng: random.Random, values: list[Typed]) -> str:
    """The values in one French message, in the given order."""
    joints = [" et ", ", ", " ; ", " puis ", "\n"]
    parts = [rng.choice(SENTENCES).format(v.text) for v in values]
    return parts[0] + "".join(rng.choice(joints) + part for part in parts[1:])


def _pairs(digits: str) -> list[str]:
    return [digits[i : i + 2] for i in range(0, len(digits), 2)]


def _case_and_width(rng: random.Random, text: str, letters: bool = True) -> str:
    if letters and rng.random() < 0.3:
        text = text.lower()
    if rng.random() < 0.15:  # typed on a phone set to full-width characters
        text = "".join(FULL_WIDTH.get(c, c) if rng.random() < 0.7 else c for c in text)
    return text


def parse(kind: str, text: str) -> parsing.Parsed:
    if kind == "numen":
        return parsing.parse_numen(text)
    if kind == "phone":
        return parsing.parse_phone(text)
    if kind == "birth_date":
        return parsing.parse_birth_date(text, TODAY)
    return parsing.parse_pro_email(text, DOMAINS)


# --- Redaction ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(GENERATORS))
@EXAMPLES
@given(rng=st.randoms(use_true_random=False))
def test_every_spelling_of_a_value_is_masked_and_kept_as_the_parser_reads_it(kind, rng):
    typed = GENERATORS[kind](rng)
    message = sentence(rng, [typed])
    redacted = redact(message, TODAY)
    assert not redacted.password, message
    assert not any(c.isdigit() for c in redacted.text), (message, redacted.text)
    if kind == "email":
        local = typed.expected.partition("@")[0]
        assert not any(part in fold(redacted.text) for part in re.split(r"[._-]", local) if part)
        assert typed.expected.partition("@")[2] in redacted.text  # the académie stays readable
    assert parse(kind, redacted.values[kind]).value == typed.expected, (message, redacted.values)


@EXAMPLES
@given(rng=st.randoms(use_true_random=False))
def test_several_values_in_one_message_are_all_masked(rng):
    values = [GENERATORS[kind](rng) for kind in rng.sample(list(GENERATORS), rng.randint(2, 4))]
    message = sentence(rng, values)
    redacted = redact(message, TODAY)
    assert not redacted.password, message
    assert not any(c.isdigit() for c in redacted.text), (message, redacted.text)
    for typed in values:
        assert parse(typed.kind, redacted.values[typed.kind]).value == typed.expected, message


# Fragments a voter's message is made of: the property below must hold for any mix of them.
PIECES = [
    " ", "  ", ".", ",", "-", "/", "+", "00", "@", "＠", " arobase ", " point ", "né en ", " le ",
    "mars", "1er", "ac-lyon.fr", "ac-lyon", ".fr", "jean", "numen", "tel", "A", "abc", "0", "06",
    "33", "262", "0692", "1980", "12", "2018", "6", "\u00a0", "０６",
]  # fmt: skip
FRAGMENTS = st.one_of(
    st.sampled_from(PIECES),
    st.text(alphabet="0123456789", min_size=1, max_size=10),
    st.builds(
        lambda rng, kind: GENERATORS[kind](rng).text,
        st.randoms(),
        st.sampled_from(list(GENERATORS)),
    ),
)


@settings(max_examples=800, deadline=None)
@given(parts=st.lists(FRAGMENTS, min_size=1, max_size=12))
def test_a_value_a_parser_would_accept_is_masked_first(parts):
    """Redaction and the parsers read alike: what a form would accept never reaches Rasa."""
    text = "".join(parts)
    redacted = redact(text, TODAY)
    for kind in GENERATORS:
        accepted = parse(kind, text)
        if accepted.ok and not redacted.password:
            after = parse(kind, redacted.text)  # only the masked address may still parse
            assert not after.ok or after.value.startswith(f"{EMAIL_LOCAL_PLACEHOLDER}@"), text
            assert parse(kind, redacted.values[kind]).value == accepted.value, text


@pytest.mark.parametrize(
    ("typed", "kind", "value"),
    [
        ("06,12,34,56,78", "phone", "+33612345678"),
        ("06.12.34.56.78", "phone", "+33612345678"),  # a phone, not the date 06.12.34
        ("06  12  34  56  78", "phone", "+33612345678"),
        ("０６ １２ ３４ ５６ ７８", "phone", "+33612345678"),
        ("12.A.1234567.ABC", "numen", "12A1234567ABC"),
        ("12  A  1234567  ABC", "numen", "12A1234567ABC"),
        ("1 2 A 1 2 3 4 5 6 7 A B C", "numen", "12A1234567ABC"),
        ("jean.dupont @ ac-lyon.fr", "email", "jean.dupont@ac-lyon.fr"),
        ("jean.dupont＠ac-lyon.fr", "email", "jean.dupont@ac-lyon.fr"),
        ("jean point dupont arobase ac-lyon.fr", "email", "jean.dupont@ac-lyon.fr"),
        ("12-mars-1980", "birth_date", "1980-03-12"),
        ("1980/03/12", "birth_date", "1980-03-12"),
        ("né en 1980 le 12 mars", "birth_date", "1980-03-12"),
    ],
)
def test_separated_full_width_and_spelled_out_values_are_masked_and_read_back(typed, kind, value):
    redacted = redact(f"voilà {typed} merci", TODAY)
    assert redacted.text.startswith("voilà ") and redacted.text.endswith(" merci")
    assert not any(c.isdigit() for c in redacted.text) and "dupont" not in redacted.text
    assert parse(kind, redacted.values[kind]).value == value


@pytest.mark.parametrize(
    "message",
    [
        "le vote se termine le 6/12/2018 ?",
        "du 29 novembre 2018 à 10h au 6 décembre 2018 à 17h",
        "le 06.12.2018 c'est fini ?",
        "je suis PE depuis 2005",
        "je bosse dans le 93",
    ],
)
def test_dates_of_the_campaign_and_small_numbers_stay_readable(message):
    assert redact(message, TODAY).text == message


# --- Passwords ---------------------------------------------------------------------------------

GIVES_A_PASSWORD = [
    "mon mot de passe c’est soleil2018",
    "mon mot de passe c'est soleil2018",
    "mon mot de passe c est soleil2018",
    "mot de passe électeur est soleil",
    "mon mot de passe électeur c’est tournesol",
    "mdp xxx!",
    "mdp : hirondelle",
    "mon mdp c’est soleil2018",
    "mon mdp = bidule42",
    "voici mon code : 4821",
    "voici mon code: 48215",
    "password: azerty",
    "Mon mot de passe, c'est Marguerite",
    "mot de passe provisoire : kT7pq",
    "MOT DE PASSE EST SOLEIL2018",
    "mdp soleil2018 ça marche pas",
    "soleil2018 c'est mon mot de passe",
    "mon mot-de-passe est azerty123",
    "Abcdefg123",
    "voilà Marie1980",
    "mon mot de passe est Toto2018!",
]
TALKS_ABOUT_A_PASSWORD = [
    "le site refuse mon mot de passe, trop court d'après lui",
    "mon mdp a 6 caractères c'est grave ?",
    "mot de passe oublié",
    "mdp oublié !",
    "j'ai oublié mon mot de passe électeur",
    "mdp trop court c koi la regle",
    "quelles sont les règles du mot de passe ?",
    "mon mot de passe est refusé",
    "mon mot de passe ne marche pas",
    "le mot de passe : minimum 8 caractères ?",
    "mon mot de passe est trop court",
    "mon mot de passe c'est quoi déjà ?",
    "c'est quoi le code postal de Lyon",
    "le mot de passe doit contenir une majuscule ?",
    "comment changer mon mot de passe",
    "mot de passe électeur perdu",
    "je n'ai pas reçu de mot de passe",
    "mon mot de passe est bloqué depuis hier",
    "mdp electeur combien de caracteres",  # « c » of « combien » is not « c'est »
    "mot de passe électeur, comment on le crée ?",
]


@pytest.mark.parametrize("message", GIVES_A_PASSWORD)
def test_a_message_that_gives_a_password_is_neither_kept_nor_forwarded(message):
    redacted = redact(message, TODAY)
    assert redacted.password and redacted.text == "" and redacted.values == {}


@pytest.mark.parametrize("message", TALKS_ABOUT_A_PASSWORD)
def test_a_message_that_only_talks_about_a_password_is_answered(message):
    redacted = redact(message, TODAY)
    assert not redacted.password and redacted.text == message


ANNOUNCES = [
    "mon mot de passe c’est {}", "mot de passe électeur est {}", "mdp : {}", "mon mdp c'est {}",
    "voici mon code : {}", "le mot de passe = {}", "Mot de passe : {}", "mon password est {}",
    "mdp {}", "{} c’est mon mot de passe",
]  # fmt: skip
PASSWORD_TOKENS = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789!#$%&*", min_size=5,
    max_size=20,
).filter(lambda t: any(c.isdigit() or c in "!#$%&*" for c in t))  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(template=st.sampled_from(ANNOUNCES), token=PASSWORD_TOKENS)
def test_any_announced_password_is_caught(template, token):
    assert holds_a_password(template.format(token))


# --- Inside the reissue form, down to the portal -----------------------------------------------

PORTAL_TOKEN = "test-portal-token"


@pytest.fixture(scope="module")
def form_world(tmp_path_factory):
    """The knowledge base, a vault on SQLite, a portal database; the clock inside the window."""
    root = tmp_path_factory.mktemp("privacy")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BOT_NOW", "2018-11-30T12:00")
        engine = create_schema(f"sqlite:///{root / 'kb.db'}")
        load_kb(engine, KB)
        vault = Vault(create_schema(f"sqlite:///{root / 'vault.db'}"), Fernet.generate_key())
        yield Knowledge(engine), vault, root


def reissue_through_the_form(form_world, values: list[Typed], split: bool) -> tuple[str, dict]:
    """Type the values (one message each, or all in one), fill the form, submit; what the bot
    said last and what the portal received."""
    knowledge, vault, root = form_world
    numen_of = next(v for v in values if v.kind == "numen").expected
    born = date.fromisoformat(next(v for v in values if v.kind == "birth_date").expected)
    portal_db = portal_models.portal_engine(f"sqlite:///{root / f'portal-{numen_of}.db'}")
    create_schema(portal_db, PORTAL)
    voter = VoterRow(
        numen_of, "Essai", "Voter", born, f"v.{numen_of.lower()}@ac-lyon.fr", "Lyon",
        "PE et instituteur",
    )  # fmt: skip
    save_voters(portal_db, [voter])
    received: list[dict] = []

    @web.middleware
    async def record(request: web.Request, handler):
        if request.method == "POST":
            received.append(await request.json())
        return await handler(request)

    async def main() -> str:
        app = create_app(portal_db, PORTAL_TOKEN, knowledge=knowledge, limits=Limits())
        app.middlewares.append(record)
        async with TestServer(app, host="127.0.0.1") as server:
            portal = PortalClient(f"http://127.0.0.1:{server.port}", PORTAL_TOKEN, timeout=4.0)
            services = ChoreServices(knowledge, vault, portal)
            form = ValidateVoterIdReissueForm(services)
            rng = random.Random(numen_of)
            messages = [sentence(rng, [v]) for v in values] if split else [sentence(rng, values)]
            slots: dict = {}
            for message in messages:
                redacted = redact(message, TODAY)
                assert not redacted.password
                vault.put("test-user", redacted.values)
                for slot in ("reissue_phone", "reissue_numen", "reissue_birth_date"):
                    state = tracker("inform", redacted.text, slots={"requested_slot": slot})
                    dispatcher = CollectingDispatcher()
                    answer = (await getattr(form, f"extract_{slot}")(dispatcher, state, {})).get(
                        slot
                    )
                    if answer is None:
                        continue
                    checked = await getattr(form, f"validate_{slot}")(answer, dispatcher, state, {})
                    assert checked.get(slot), (message, said(dispatcher.messages))
                    slots[slot] = checked[slot]
            assert set(slots) == {"reissue_phone", "reissue_numen", "reissue_birth_date"}
            dispatcher = CollectingDispatcher()
            await ActionSubmitVoterIdReissue(services).run(
                dispatcher, tracker("affirm", "oui", slots=slots), {}
            )
            return said(dispatcher.messages)

    answer = asyncio.run(main())
    portal_db.dispose()
    return answer, received[-1] if received else {}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rng=st.randoms(use_true_random=False), split=st.booleans())
def test_generated_values_complete_a_reissue_with_the_right_values_at_the_portal(
    form_world, rng, split
):
    values = [numen(rng), phone(rng), birth_date(rng)]
    assume(len({v.expected for v in values}) == 3)
    answer, received = reissue_through_the_form(form_world, values, split)
    assert "SMS avec votre nouvel identifiant" in answer, answer
    expected = {v.kind: v.expected for v in values}
    assert received == {
        "numen": expected["numen"], "phone": expected["phone"],
        "birth_date": expected["birth_date"],
    }  # fmt: skip
