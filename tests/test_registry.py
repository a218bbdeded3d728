"""The voter registry import, with files written the way French spreadsheets write them.

Every file here is produced by Python's csv module as Excel or LibreOffice would save it
(`;` separator, Windows-1252 or UTF-8 with a BOM, CRLF, quoted fields, empty trailing lines),
then imported into a real SQLite file or a throw-away PostgreSQL database.
"""

from __future__ import annotations

import csv
import io
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot.config import REPO_ROOT
from bot.db import PORTAL, create_schema
from bot.portal.models import Voter, portal_engine
from bot.portal.registry import (
    COLUMNS,
    DEMO_CSV,
    VoterImportError,
    VoterRow,
    import_voters,
    parse_voters,
    read_voters,
)
from tests.conftest import throwaway_postgres

DD_MM_YYYY, ISO = "%d/%m/%Y", "%Y-%m-%d"
# Accented names as the académies type them; œ and Œ exist in Windows-1252 (not in Latin-1).
FRENCH_VOTERS = [
    VoterRow("01E9501234ABC", "Lefèvre", "Hélène", date(1980, 3, 12),
             "helene.lefevre@ac-lyon.fr", "Lyon", "PE et instituteur"),
    VoterRow("02E9602345BCD", "Cœurdacier", "François", date(1975, 6, 25),
             "francois.coeurdacier@ac-creteil.fr", "Créteil", "Enseignant; contractuel"),
    VoterRow("03E9703456CDE", "Œttinger-Garçon", "Noël", date(1988, 9, 1),
             "noel.oettinger@ac-reunion.fr", "La Réunion", 'AESH "AED"'),
    VoterRow("04E9804567DEF", "D'Arçonville", "Maëlle", date(1969, 2, 14),
             "maelle.darconville@ac-aix-marseille.fr", "Aix-Marseille", "PsyEN, détaché"),
]  # fmt: skip


def spreadsheet_csv(
    voters: list[VoterRow],
    *,
    delimiter: str = ";",
    encoding: str = "cp1252",
    lineterminator: str = "\r\n",
    date_format: str = DD_MM_YYYY,
    quoting: int = csv.QUOTE_MINIMAL,
    columns: tuple[str, ...] = COLUMNS,
    blank_lines_after: int = 2,
    extra_rows: tuple[tuple[int, list[str]], ...] = (),
) -> bytes:
    """The bytes of a registry saved by a spreadsheet; `extra_rows` are raw rows inserted
    before the voter of the given index (bad lines)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, lineterminator=lineterminator, quoting=quoting)
    writer.writerow(columns)
    extras = dict(extra_rows)
    for position, voter in enumerate(voters):
        if position in extras:
            writer.writerow(extras[position])
        values = {
            "numen": voter.numen,
            "nom": voter.nom,
            "prenom": voter.prenom,
            "date_naissance": voter.date_naissance.strftime(date_format),
            "email": voter.email,
            "academie": voter.academie,
            "categorie": voter.categorie,
        }
        writer.writerow([values[column] for column in columns])
    out.write(lineterminator * blank_lines_after)
    return out.getvalue().encode(encoding)


def registry_rows(engine: Engine) -> list[tuple]:
    """Every column of every voter, to compare the table before and after an import."""
    with Session(engine, future=True) as session:
        return [
            tuple(getattr(voter, column.name) for column in Voter.__table__.columns)
            for voter in session.scalars(select(Voter).order_by(Voter.numen))
        ]


@pytest.fixture(params=["sqlite", "postgresql"])
def registry_engine(request, tmp_path: Path) -> Iterator[Engine]:
    """The portal's tables on a real SQLite file, then on a throw-away PostgreSQL database."""
    if request.param == "sqlite":
        yield create_schema(portal_engine(f"sqlite:///{tmp_path / 'portal.db'}"), PORTAL)
        return
    with throwaway_postgres("registry") as url:
        engine = create_schema(portal_engine(url), PORTAL)
        yield engine
        engine.dispose()


# --- Files as spreadsheets save them -----------------------------------------------------------


def test_a_french_excel_file_in_windows_1252_imports_with_its_accents(registry_engine, tmp_path):
    data = spreadsheet_csv(FRENCH_VOTERS)  # Excel's « CSV (séparateur : point-virgule) »
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # really Windows-1252: the strict UTF-8 attempt must fail
    assert b"\r\n" in data and b"\x9c" in data  # CRLF, and œ as Windows-1252 writes it
    (tmp_path / "excel.csv").write_bytes(data)

    report = import_voters(registry_engine, tmp_path / "excel.csv")

    assert (report.created, report.updated) == (4, 0)
    stored = {row[1]: row for row in registry_rows(registry_engine)}
    for voter in FRENCH_VOTERS:
        assert stored[voter.numen][1:8] == (
            voter.numen, voter.nom, voter.prenom, voter.date_naissance, voter.email,
            voter.academie, voter.categorie,
        )  # fmt: skip


@pytest.mark.parametrize(
    "dialect, encoding_name",
    [
        # LibreOffice « CSV UTF-8 » with a BOM, commas, ISO dates, every field quoted
        (dict(delimiter=",", encoding="utf-8-sig", date_format=ISO, quoting=csv.QUOTE_ALL),
         "UTF-8 avec BOM"),
        # UTF-8 without a BOM, semicolons, Unix line ends, no trailing empty line
        (dict(encoding="utf-8", lineterminator="\n", blank_lines_after=0), "UTF-8"),
        # Excel's « Texte Unicode » : UTF-16 with its BOM, tabulations
        (dict(delimiter="\t", encoding="utf-16"), "UTF-16"),
        # Windows-1252, columns in another order, ISO dates
        (dict(columns=tuple(reversed(COLUMNS)), date_format=ISO), "Windows-1252"),
    ],
)  # fmt: skip
def test_each_spreadsheet_dialect_reads_the_same_voters(tmp_path, dialect, encoding_name):
    path = tmp_path / "voters.csv"
    path.write_bytes(spreadsheet_csv(FRENCH_VOTERS, **dialect))

    registry = read_voters(path)

    assert registry.voters == FRENCH_VOTERS
    assert [v.nom for v in registry.voters] == [v.nom for v in FRENCH_VOTERS]  # œ, ç, è kept
    assert registry.encoding == encoding_name
    assert registry.delimiter == dialect.get("delimiter", ";")


def test_empty_rows_a_spreadsheet_keeps_are_skipped_and_line_numbers_stay_true():
    text = (
        f"{';'.join(COLUMNS)}\r\n"
        ";;;;;;\r\n"  # a row once formatted, now empty
        "\r\n"
        '01E9501234ABC;"Lefèvre\r\ndit Hélène";Hélène;12/03/1980;h.l@ac-lyon.fr;Lyon;PES\r\n'
        "02E96;Cœur;Léa;25/06/1975;l.c@ac-lyon.fr;Lyon;PES\r\n"
        ";;;;;;\r\n;;;;;;\r\n"
    )
    with pytest.raises(VoterImportError) as error:
        parse_voters(text)
    # the quoted field spans lines 4 and 5: the NUMEN is on line 6, as the text editor shows
    assert error.value.problems == [
        "Ligne 6 : NUMEN invalide (13 caractères attendus : 2 chiffres, 1 lettre, "
        "7 chiffres, 3 lettres)."
    ]
    assert parse_voters(text.replace("02E96;", "02E9602345BCD;"))[0].line == 4


# --- Bad lines ---------------------------------------------------------------------------------

HEADER = "numen,nom,prenom,date_naissance,email,academie,categorie"
GOOD_ROW = "01E9501234ABC,Exemple,Marie,12/03/1980,marie.exemple@ac-lyon.fr,Lyon,PES"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", "vide"),
        ("\r\n", "vide"),
        ("numen,nom,prenom\n", "Ligne 1 : colonne(s) manquante(s) : date_naissance, email"),
        (f"{HEADER}\n{GOOD_ROW}\n01E95,Fictif,Jean,25/06/1975,j.f@ac-creteil.fr,Créteil,PES\n",
         "Ligne 3 : NUMEN invalide"),
        (f"{HEADER}\n{GOOD_ROW.replace('12/03/1980', '31/02/1980')}\n",
         "Ligne 2 : date de naissance impossible (ce jour n'existe pas"),
        (f"{HEADER}\n{GOOD_ROW.replace('12/03/1980', '1980-02-30')}\n",
         "Ligne 2 : date de naissance impossible (ce jour n'existe pas"),
        (f"{HEADER}\n{GOOD_ROW.replace('12/03/1980', '12/13/1980')}\n",
         "Ligne 2 : date de naissance impossible (ce jour n'existe pas"),
        (f"{HEADER}\n{GOOD_ROW.replace('12/03/1980', '12/03/2980')}\n",
         "Ligne 2 : date de naissance impossible (antérieure à 1900 ou pas encore passée)"),
        (f"{HEADER}\n{GOOD_ROW.replace('12/03/1980', '12-03-1980')}\n",
         "Ligne 2 : date de naissance invalide (formats acceptés : jj/mm/aaaa ou aaaa-mm-jj)"),
        (f"{HEADER}\n{GOOD_ROW.replace('01E95', '0٠E95')}\n", "Ligne 2 : NUMEN invalide"),
        (f"{HEADER}\n{GOOD_ROW.replace('12/03/1980', '12/03/١٩٨٠')}\n",
         "Ligne 2 : date de naissance invalide"),
        (f"{HEADER}\n{GOOD_ROW.replace('12/03/1980', '12/03/80')}\n",
         "Ligne 2 : date de naissance invalide"),
        (f"{HEADER}\n{GOOD_ROW.replace('marie.exemple@', 'marie.exemple_at_')}\n",
         "Ligne 2 : adresse e-mail invalide"),
        (f"{HEADER}\n{GOOD_ROW.replace(',Exemple,', ',,')}\n", "Ligne 2 : le champ « nom »"),
        (f"{HEADER}\n{GOOD_ROW.replace(',Exemple,', ',' + 'E' * 101 + ',')}\n",
         "Ligne 2 : le champ « nom » dépasse 100 caractères"),
        (f"{HEADER}\n{GOOD_ROW},en trop\n", "Ligne 2 : nombre de champs incorrect (7 attendus, 8"),
        (f'{HEADER}\n"{GOOD_ROW}\n{GOOD_ROW}\n', "Ligne 2 : nombre de champs incorrect"),
        (f"{HEADER}\n{GOOD_ROW}\x00\n", "Ligne 2 : ligne illisible"),
        (f"{HEADER}\n\n{GOOD_ROW}\n{GOOD_ROW}\n", "Ligne 4 : même NUMEN que la ligne 3"),
    ],
)  # fmt: skip
def test_a_bad_registry_line_is_reported_with_its_number_and_reason(text, expected):
    with pytest.raises(VoterImportError) as error:
        parse_voters(text)
    assert expected in str(error.value)
    for value in ("01E95", "1980", "2980", "12/03", "marie.exemple"):
        assert value not in str(error.value)  # the value found is never repeated


def test_every_bad_line_is_reported_and_a_refused_file_changes_nothing(registry_engine, tmp_path):
    import_voters(registry_engine, DEMO_CSV)
    with Session(registry_engine, future=True) as session, session.begin():
        session.execute(update(Voter).where(Voter.numen == "01E9501234ABC").values(reissues=2))
    before = registry_rows(registry_engine)
    bad = [
        ["05E0012345ABC", "Bérénice", "Zoé", "30/02/1990", "z.b@ac-lyon.fr", "Lyon", "PES"],
        ["06F0012345AB", "Garçon", "", "1991-07-14", "g@ac-lyon.fr", "Lyon", "PES"],
        ["07G0012345ABC", "Cœur", "Léon", "1992/07/14", "l.c@ac-lyon.fr", "Lyon", "PES"],
    ]
    data = spreadsheet_csv(FRENCH_VOTERS, extra_rows=((1, bad[0]), (2, bad[1]), (3, bad[2])))
    (tmp_path / "mixed.csv").write_bytes(data)

    with pytest.raises(VoterImportError) as error:
        import_voters(registry_engine, tmp_path / "mixed.csv")

    assert error.value.problems == [
        "Ligne 3 : date de naissance impossible (ce jour n'existe pas dans le calendrier).",
        "Ligne 5 : NUMEN invalide (13 caractères attendus : 2 chiffres, 1 lettre, 7 chiffres, "
        "3 lettres).",
        "Ligne 5 : le champ « prenom » est vide.",
        "Ligne 7 : date de naissance invalide (formats acceptés : jj/mm/aaaa ou aaaa-mm-jj).",
    ]
    message = str(error.value)
    for numen, _, _, born, *_ in bad:
        assert numen not in message and born not in message and born[:5] not in message
    assert registry_rows(registry_engine) == before  # not one of the good lines was written


def test_an_address_of_a_voter_absent_from_the_file_refuses_it_whole(registry_engine, tmp_path):
    import_voters(registry_engine, DEMO_CSV)
    before = registry_rows(registry_engine)
    jean = before[1]  # 02E9602345BCD, in the demo registry, not in the new file
    # FRENCH_VOTERS[0] has the NUMEN of the demo's Marie: an update, refused with the rest
    newcomers = [FRENCH_VOTERS[2], replace(FRENCH_VOTERS[3], email=jean[5]), FRENCH_VOTERS[0]]
    (tmp_path / "taken.csv").write_bytes(spreadsheet_csv(newcomers))

    with pytest.raises(VoterImportError) as error:
        import_voters(registry_engine, tmp_path / "taken.csv")

    assert error.value.problems == [
        "Ligne 3 : cette adresse e-mail est déjà celle d'un autre électeur du registre, "
        "absent du fichier."
    ]
    assert jean[5] not in str(error.value)
    assert registry_rows(registry_engine) == before


def test_voters_who_exchange_their_addresses_import_in_one_go(registry_engine, tmp_path):
    import_voters(registry_engine, DEMO_CSV)
    with Session(registry_engine, future=True) as session, session.begin():
        session.execute(update(Voter).where(Voter.numen == "01E9501234ABC").values(reissues=2))
    swapped = DEMO_CSV.read_text(encoding="utf-8")
    swapped = (
        swapped.replace("marie.exemple@ac-lyon.fr", "@marie@")
        .replace("jean.fictif@ac-creteil.fr", "marie.exemple@ac-lyon.fr")
        .replace("@marie@", "jean.fictif@ac-creteil.fr")
    )
    (tmp_path / "swapped.csv").write_bytes(swapped.replace(",", ";").encode("cp1252"))

    report = import_voters(registry_engine, tmp_path / "swapped.csv")

    rows = {row[1]: row for row in registry_rows(registry_engine)}
    assert report.updated == len(rows) and report.created == 0
    assert rows["01E9501234ABC"][5] == "jean.fictif@ac-creteil.fr"
    assert rows["02E9602345BCD"][5] == "marie.exemple@ac-lyon.fr"
    assert rows["01E9501234ABC"][8] == 2  # reissues kept


def test_an_import_that_fails_after_writing_leaves_the_registry_as_it_was(tmp_path):
    """PostgreSQL: another transaction takes an address of the file between our checks and our
    INSERT; our UPDATE already ran when the INSERT fails, and must be rolled back."""
    with throwaway_postgres("registry") as url:
        engine = create_schema(portal_engine(url), PORTAL)
        import_voters(engine, DEMO_CSV)
        before = registry_rows(engine)
        # Marie (an update: her new name and address) then a newcomer (an INSERT)
        (tmp_path / "voters.csv").write_bytes(spreadsheet_csv(FRENCH_VOTERS[:2]))
        rival = dict(numen="09E0012345XYZ", nom="Autre", prenom="Import", academie="Lyon",
                     date_naissance=date(1970, 1, 1), email=FRENCH_VOTERS[1].email,
                     categorie="PES")  # fmt: skip
        with engine.connect() as other, ThreadPoolExecutor(1) as pool:
            other.begin()
            other.execute(insert(Voter).values(**rival))  # not committed yet: our checks miss it
            ours = pool.submit(import_voters, engine, tmp_path / "voters.csv")
            waited = 0.0
            with engine.connect() as watcher:
                blocked = text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
                while not watcher.execute(blocked).scalar() and waited < 20:
                    time.sleep(0.05)  # our INSERT waits for the rival's unique key
                    waited += 0.05
            assert waited < 20, "the import never reached its INSERT"
            other.commit()
            with pytest.raises(VoterImportError, match="Le registre a changé pendant l'import"):
                ours.result(timeout=30)
        after = registry_rows(engine)
        engine.dispose()
    assert [row for row in after if row[1] != rival["numen"]] == before  # Marie's update undone
    assert len(after) == len(before) + 1


# --- The command line --------------------------------------------------------------------------


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {
        "PORTAL_DATABASE_URL": f"sqlite:///{tmp_path / 'portal.db'}",
        "PATH": "/usr/bin:/bin",
        "LOG_LEVEL": "DEBUG",
    }
    return subprocess.run(
        [sys.executable, "-m", "bot.portal", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_the_command_line_lists_every_bad_line_then_imports_the_corrected_file(tmp_path):
    bad_numen, bad_date = "08H00123456ABC", "1993-02-29"
    row = [bad_numen, "Lœvenbruck", "Zoé", bad_date, "z.l@ac-nice.fr", "Nice", "PES"]
    data = spreadsheet_csv(FRENCH_VOTERS, extra_rows=((2, row),))
    (tmp_path / "refused.csv").write_bytes(data)

    refused = cli(tmp_path, "import-csv", str(tmp_path / "refused.csv"))

    assert refused.returncode == 2
    assert "Import impossible, rien n'a été modifié (2 problème(s)) :" in refused.stderr
    assert "  Ligne 4 : NUMEN invalide" in refused.stderr
    assert "  Ligne 4 : date de naissance impossible" in refused.stderr
    for value in (bad_numen, bad_date, "29/02/1993", "z.l@"):
        assert value not in refused.stderr + refused.stdout  # terminal and logs alike

    (tmp_path / "voters.csv").write_bytes(spreadsheet_csv(FRENCH_VOTERS))
    imported = cli(tmp_path, "import-csv", str(tmp_path / "voters.csv"))
    assert imported.returncode == 0, imported.stderr
    assert "Fichier lu en Windows-1252, séparateur point-virgule." in imported.stdout
    assert "4 électeur(s) ajouté(s), 0 mis à jour" in imported.stdout


def test_the_command_line_refuses_an_unknown_encoding_and_a_missing_file(tmp_path):
    (tmp_path / "binary.csv").write_bytes(f"{HEADER}\n".encode() + b"\x81\x8d\xff\n")
    unreadable = cli(tmp_path, "import-csv", str(tmp_path / "binary.csv"))
    assert unreadable.returncode == 2 and "Encodage du fichier non reconnu" in unreadable.stderr
    missing = cli(tmp_path, "import-csv", str(tmp_path / "absent.csv"))
    assert missing.returncode == 2 and "Fichier introuvable" in missing.stderr


# --- Any registry, in any dialect ----------------------------------------------------------------

# Letters of French names that Windows-1252 can write, and the separators and quotes a cell may
# hold (the csv writer must quote them, the reader unquote them).
NAME_LETTERS = string.ascii_letters + "éèêëàâäîïôöùûüçœÉÈÊÀÂÎÔÇŒÿ'- ;,\""
names = st.text(NAME_LETTERS, min_size=1, max_size=40).map(str.strip).filter(bool)
numens = st.from_regex(r"\A[0-9]{2}[A-Z][0-9]{7}[A-Z]{3}\Z")
emails = st.builds(
    "{}.{}@ac-{}.fr".format,
    st.text(string.ascii_lowercase, min_size=1, max_size=10),
    st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=10),
    st.sampled_from(["lyon", "creteil", "reunion", "aix-marseille", "nancy-metz"]),
)
voters = st.builds(
    VoterRow,
    numen=numens,
    nom=names,
    prenom=names,
    date_naissance=st.dates(date(1940, 1, 1), date(2005, 12, 31)),
    email=emails,
    academie=names,
    categorie=names,
)
dialects = st.fixed_dictionaries(
    {
        "delimiter": st.sampled_from([";", ",", "\t"]),
        "encoding": st.sampled_from(["cp1252", "utf-8", "utf-8-sig", "utf-16"]),
        "lineterminator": st.sampled_from(["\r\n", "\n"]),
        "date_format": st.sampled_from([DD_MM_YYYY, ISO]),
        "quoting": st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
        "columns": st.permutations(COLUMNS).map(tuple),
        "blank_lines_after": st.integers(0, 3),
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    registry=st.lists(
        voters, min_size=1, max_size=8, unique_by=(lambda v: v.numen, lambda v: v.email)
    ),
    dialect=dialects,
)
def test_any_registry_in_any_spreadsheet_dialect_reads_back_the_same_voters(registry, dialect):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "registry.csv"
        path.write_bytes(spreadsheet_csv(registry, **dialect))
        read = read_voters(path)
    assert read.voters == registry
    assert read.delimiter == dialect["delimiter"]
    assert [v.line for v in read.voters] == list(range(2, len(registry) + 2))
