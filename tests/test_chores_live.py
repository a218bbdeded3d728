"""The two account chores, end to end: browser -> gateway -> Rasa -> actions -> simulated portal.

Everything runs as separate processes on loopback (`live_bot`), with the clock pinned inside the
voter-ID window. Voters come from the demo registry shipped with the portal.
"""

from __future__ import annotations

import csv
import random
import re
import sqlite3
import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from bot.config import REPO_ROOT
from tests.conftest import buttons, texts
from tests.test_privacy import GIVES_A_PASSWORD, Typed, birth_date, email, numen, phone, sentence

REGISTRY = REPO_ROOT / "bot" / "portal" / "demo_voters.csv"


def voters() -> list[dict[str, str]]:
    with REGISTRY.open(encoding="utf-8") as rows:
        return list(csv.DictReader(rows))


def voter(index: int) -> dict[str, str]:
    return voters()[index]


def sms_to(outbox: list[dict], last_digits: str) -> list[dict]:
    return [m for m in outbox if m["channel"] == "sms" and m["to"].endswith(last_digits)]


def reissue(bot, who: str, phone: str, numen: str, birth: str) -> list[dict]:
    """Start a reissue and give the three values; returns the confirmation question."""
    start = texts(bot.chat("j'ai perdu mon identifiant électeur", who))
    assert "uniquement par SMS" in start and "portable" in start
    assert "NUMEN" in texts(bot.chat(phone, who))
    assert "date de naissance" in texts(bot.chat(f"mon numen c'est {numen}", who))
    return bot.chat(birth, who)


def test_a_voter_gets_a_new_voter_id_by_sms(live_bot):
    person = voter(0)
    summary = reissue(
        live_bot, "happy", "06 11 22 33 44", person["numen"], person["date_naissance"]
    )
    said = texts(summary)
    assert "+33 6 •• •• •• 44" in said and person["numen"][-3:] in said
    assert person["numen"] not in said and "11 22 33" not in said
    confirm = next(b for b in buttons(summary) if b["payload"] == "/affirm")
    done = texts(live_bot.chat(confirm["payload"], "happy"))
    assert "SMS avec votre nouvel identifiant" in done and "+33 6 •• •• •• 44" in done
    local, domain = person["email"].split("@")
    assert f"{local[0]}•••@{domain}" in done  # the confirmation e-mail, masked
    assert len(sms_to(live_bot.portal_outbox(), "44")) == 1
    # A second click on the same button sends nothing more.
    again = texts(live_bot.chat(confirm["payload"], "happy"))
    assert "SMS" not in again or "Aucune demande" in again
    assert len(sms_to(live_bot.portal_outbox(), "44")) == 1


def test_wrong_values_get_specific_messages_and_the_question_again(live_bot):
    texts(live_bot.chat("jai perdu mon id electeur", "typos"))
    fixed = texts(live_bot.chat("01 45 67 89 10", "typos"))
    assert "ligne fixe" in fixed and "portable" in fixed
    assert "Je ne reconnais pas ce numéro" in texts(live_bot.chat("0612", "typos"))
    assert "NUMEN" in texts(live_bot.chat("+262 692 12 34 56", "typos"))
    short = texts(live_bot.chat("01E950123ABC", "typos"))
    assert "13 caractères" in short and "12" in short
    assert "date de naissance" in texts(live_bot.chat(voter(1)["numen"], "typos"))
    assert "n'existe pas" in texts(live_bot.chat("31/02/1980", "typos"))
    assert "4 chiffres" in texts(live_bot.chat("12/03/80", "typos"))
    summary = texts(live_bot.chat("12 mars 1980", "typos"))
    assert "+262 6•• •• •• 56" in summary and "••/••/1980" in summary


def test_repeated_failures_offer_a_way_out(live_bot):
    texts(live_bot.chat("je veux un nouvel identifiant électeur", "stuck"))
    replies = [texts(live_bot.chat(text, "stuck")) for text in ("bof", "0612", "n'importe quoi")]
    assert "assistance" not in replies[0]  # the way out comes after repeated failures
    assert "assistance" in replies[-1] and "annuler" in replies[-1]


def test_a_mismatch_does_not_say_which_field_and_locks_after_three(live_bot):
    person = voter(2)
    replies = []
    for attempt in range(3):
        summary = reissue(
            live_bot, "brute", f"06 55 44 33 2{attempt}", person["numen"], "01/01/1970"
        )
        assert "J'envoie la demande" in texts(summary)
        replies.append(texts(live_bot.chat("oui", "brute")))
    assert "ne correspondent pas" in replies[0]
    assert "NUMEN et votre date de naissance" in replies[0]  # both, never which one
    assert "suspendues" in replies[2]
    assert "suspendues" in texts(live_bot.chat("identifiant perdu", "brute"))
    assert not [m for m in live_bot.portal_outbox() if m["to"].endswith("20")]


def test_the_voter_can_ask_what_a_numen_is_correct_a_value_and_cancel(live_bot):
    texts(live_bot.chat("identifiant électeur perdu", "side"))
    texts(live_bot.chat("06 98 76 54 32", "side"))
    side = texts(live_bot.chat("c'est quoi le NUMEN ?", "side"))
    assert "service RH académique" in side and "Quel est votre NUMEN" in side
    corrected = texts(live_bot.chat("je me suis trompé de numéro de portable", "side"))
    assert "corrigeons le numéro" in corrected and "portable" in corrected
    assert "NUMEN" in texts(live_bot.chat("07 81 23 45 67", "side"))
    cancelled = texts(live_bot.chat("laisse tomber", "side"))
    assert "Demande annulée" in cancelled
    assert "Aucune demande" in texts(live_bot.chat("annuler", "side"))


def test_a_correction_from_the_summary_buttons(live_bot):
    person = voter(3)
    summary = reissue(live_bot, "fix", "06 12 12 12 12", person["numen"], person["date_naissance"])
    fix_date = next(b for b in buttons(summary) if "date" in b["title"].lower())
    assert "date de naissance" in texts(live_bot.chat(fix_date["payload"], "fix"))
    again = texts(live_bot.chat("01/01/1990", "fix"))
    assert "••/••/1990" in again and "J'envoie la demande" in again
    assert "Que faut-il corriger" in texts(live_bot.chat("non", "fix"))
    assert "Demande annulée" in texts(live_bot.chat("/cancel", "fix"))


def test_password_reset_accepts_only_academie_addresses(live_bot):
    person = voter(0)
    start = texts(live_bot.chat("j'ai oublié mon mot de passe électeur", "reset"))
    assert "jamais votre mot de passe" in start and "adresse" in start
    assert "adresse personnelle" in texts(live_bot.chat("marie.dupont@gmail.com", "reset"))
    local, domain = person["email"].split("@")
    typo = texts(live_bot.chat(f"{local}@{domain.replace('.fr', '.com')}", "reset"))
    assert f"…@{domain}" in typo and local not in typo
    done = texts(live_bot.chat(person["email"], "reset"))
    assert f"{local[0]}•••@{domain}" in done and "lien" in done
    mails = [m for m in live_bot.portal_outbox() if m["channel"] == "email"]
    assert any(m["to"] == f"{local[0]}•••@{domain}" for m in mails)  # the outbox masks too


def test_reset_answers_the_same_for_an_unknown_address(live_bot):
    known = voter(1)["email"]
    domain = known.split("@")[1]
    unknown = f"personne.inconnue@{domain}"
    before = len(live_bot.portal_outbox())
    replies = []
    for address, who in ((known, "enum-1"), (unknown, "enum-2")):
        texts(live_bot.chat("mot de passe électeur oublié", who))
        replies.append(re.sub(r"\S•••@", "•••@", texts(live_bot.chat(address, who))))
    assert "lien" in replies[0] and replies[0] == replies[1]
    sent = live_bot.portal_outbox()[before:]
    assert [m["to"] for m in sent if m["channel"] == "email"] == [f"{known[0]}•••@{domain}"]


def test_a_typed_password_is_neither_kept_nor_forwarded(live_bot):
    texts(live_bot.chat("mot de passe oublié", "pwd"))
    warning = texts(live_bot.chat("mon mot de passe c'est Tournesol2018", "pwd"))
    assert "Ne communiquez jamais votre mot de passe" in warning
    assert "adresse" in warning  # the form asks its question again
    assert "Tournesol2018" not in live_bot.tracker_text() + live_bot.log_text()


def test_no_personal_value_lands_in_a_database_or_a_log(live_bot):
    """A full reissue conversation, then a search of every file the assistant writes."""
    person = voter(4)
    phone = "06 71 82 93 04"
    summary = reissue(live_bot, "privacy", phone, person["numen"], person["date_naissance"])
    assert "J'envoie la demande" in texts(summary)
    assert "SMS" in texts(live_bot.chat("oui", "privacy"))
    born = datetime.strptime(person["date_naissance"], "%d/%m/%Y")
    needles = {
        person["numen"], person["numen"].lower(), phone, phone.replace(" ", ""), "+33671829304",
        person["date_naissance"], born.strftime("%Y-%m-%d"), born.strftime("%d%m%Y"),
    }  # fmt: skip
    stores = stores_of(live_bot)
    haystack = b"".join(f.read_bytes() for f in stores)
    assert (live_bot.workdir / "tracker.db").exists()
    # Each process's own log (bot/logs.py: rotated files, text or JSON lines, which escape
    # none of the needles' characters) and what bypassed logging (*.out) are searched.
    logged = {f.name for f in stores if f.parent == live_bot.logs and f.stat().st_size}
    for name in ("portal", "actions", "rasa", "gateway"):
        assert f"{name}.log" in logged and f"{name}.out" in {f.name for f in stores}
    assert b"NUMEN_MASQUE" in haystack  # the conversation is stored, redacted
    found = [n for n in needles if n.encode() in haystack]
    assert found == []


def stores_of(bot, *extra: Path) -> list[Path]:
    """Every file the assistant writes (the portal's own database excepted: it is the ministry's
    registry): Rasa's tracker store, our database (support tables, vault), logs, and `extra`."""
    files = [bot.workdir / "tracker.db", bot.workdir / "bot.db", *bot.logs.glob("*")]
    files += [Path(str(f) + suffix) for f in files[:2] for suffix in ("-wal", "-journal")]
    return [f for f in [*files, *extra] if f.is_file()]


def rows_holding(database: Path, needles: set[str]) -> list[str]:
    """`table: needle` for each row of each table of a SQLite file holding one of `needles`."""
    hits = []
    with sqlite3.connect(database) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                text = " ".join(str(v) for v in row)
                hits += [f"{table}: {n}" for n in needles if n in text]
    return hits


def test_values_typed_in_any_spelling_reach_no_store(live_bot, tmp_path):
    """Generated values in every spelling the recogniser reads, typed through the gateway, then
    every store searched for them in several spellings (and the insights export): zero hits."""
    rng = random.Random(14)
    people = [(numen(rng), phone(rng), birth_date(rng)) for _ in range(4)]
    registry = tmp_path / "voters.csv"
    with registry.open("w", encoding="utf-8", newline="") as out:
        rows = csv.writer(out)
        rows.writerow(
            ["numen", "nom", "prenom", "date_naissance", "email", "academie", "categorie"]
        )
        for index, (who, _, born) in enumerate(people):
            day = date.fromisoformat(born.expected).strftime("%d/%m/%Y")
            mail = f"voter.essai{index}@ac-lyon.fr"
            rows.writerow([who.expected, "Essai", "Voter", day, mail, "Lyon", "PE et instituteur"])
    subprocess.run(
        [sys.executable, "-m", "bot.portal", "import-csv", str(registry)],
        cwd=REPO_ROOT, env=live_bot.env, check=True, capture_output=True,
    )  # fmt: skip
    typed: list[Typed] = []
    for index, values in enumerate(people):
        who = f"spelled-{index}"
        assert "uniquement par SMS" in texts(live_bot.chat("j'ai perdu mon identifiant", who))
        messages = (
            [sentence(rng, list(values))] if index % 2 else [sentence(rng, [v]) for v in values]
        )
        for message in messages:
            summary = texts(live_bot.chat(message, who))
        assert "J'envoie la demande" in summary, (messages, summary)
        assert "SMS avec votre nouvel identifiant" in texts(live_bot.chat("oui", who))
        typed += values
    for index in range(3):
        who = f"spelled-mail-{index}"
        address = email(rng)
        texts(live_bot.chat("mot de passe électeur oublié", who))
        assert "lien" in texts(live_bot.chat(sentence(rng, [address]), who))
        typed.append(address)
    for message in GIVES_A_PASSWORD[:8]:
        assert "Ne communiquez jamais" in texts(live_bot.chat(message, "spelled-password"))
    insights = tmp_path / "insights"
    subprocess.run(
        [sys.executable, "-m", "bot.support.insights", "--out", str(insights),
         "--now", datetime.now(timezone.utc).isoformat()],
        cwd=REPO_ROOT, env=live_bot.env, check=True, capture_output=True,
    )  # fmt: skip
    needles = {n for t in typed for n in t.needles()} | {"soleil2018", "hirondelle", "bidule42"}
    haystack = b"".join(f.read_bytes() for f in stores_of(live_bot, *insights.rglob("*")))
    assert b"TELEPHONE_MASQUE" in haystack and b"NUMEN_MASQUE" in haystack
    assert b"adresse_masquee@" in haystack
    assert [n for n in needles if n.encode() in haystack] == []
    for database in ("bot.db", "tracker.db"):
        assert rows_holding(live_bot.workdir / database, needles) == []


@pytest.mark.parametrize(
    ("message", "answer"),
    [
        ("annuler", "Aucune demande n'est en cours"),
        ("je me suis trompé de numéro", "Aucune demande n'est en cours"),
        ("oui", "D'accord"),
        ("non", "D'accord"),
    ],
)
def test_chore_words_outside_a_chore_get_a_sensible_answer(live_bot, message, answer):
    assert answer in texts(live_bot.chat(message, f"outside-{message}"))
