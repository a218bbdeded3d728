"""The simulated portal's voter registry, imported from a CSV file.

Columns: `numen,nom,prenom,date_naissance,email,academie,categorie`, in any order, other
columns ignored. The file may come straight from a spreadsheet: separator `;`, `,` or
tabulation (read from the header line), UTF-8 with or without a BOM, Windows-1252 or UTF-16,
CRLF line ends, quoted fields, empty lines; birth dates as jj/mm/aaaa or aaaa-mm-jj.

The whole file is checked before anything is written and every bad line is reported with its
line number and the reason, never the value found (a NUMEN and a birth date are personal).
Importing again updates voters by NUMEN and keeps their count of reissues; a refused file
changes nothing (one transaction).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.portal.models import Voter

DEMO_CSV = Path(__file__).with_name("demo_voters.csv")
COLUMNS = ("numen", "nom", "prenom", "date_naissance", "email", "academie", "categorie")
DELIMITERS = (";", ",", "\t")
NUMEN = re.compile(r"^\d{2}[A-Z]\d{7}[A-Z]{3}$", re.ASCII)  # not « ٠١ » nor « ０１ »
BIRTH_DATES = (
    re.compile(r"^(?P<day>\d{1,2})/(?P<month>\d{1,2})/(?P<year>\d{4})$", re.ASCII),
    re.compile(r"^(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})$", re.ASCII),  # ISO 8601
)
OLDEST_BIRTH_YEAR = 1900
EMAIL = re.compile(r"^[a-z0-9](?:[a-z0-9._+'-]*[a-z0-9])?@[a-z0-9-]+(?:\.[a-z0-9-]+)+$")
TEXT_COLUMNS = ("nom", "prenom", "academie", "categorie")
# The widths of the registry's columns: PostgreSQL refuses a longer value, SQLite would keep it.
MAX_LENGTHS = {name: getattr(Voter, name).type.length for name in (*TEXT_COLUMNS, "email")}
QUERY_CHUNK = 500  # values per `IN (...)`: well under every database's limit on parameters


class VoterImportError(ValueError):
    """A file that cannot be imported; `problems` say, in French, where and why.

    They never repeat a value of the file: a NUMEN or a birth date is personal data.
    """

    def __init__(self, problems: str | Sequence[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class VoterRow:
    numen: str
    nom: str
    prenom: str
    date_naissance: date
    email: str
    academie: str
    categorie: str
    line: int = field(default=0, compare=False)  # in the file, for the messages


@dataclass(frozen=True)
class ImportReport:
    created: int
    updated: int


@dataclass(frozen=True)
class RegistryFile:
    """The voters of a file, and how it was written (for the operator's confirmation)."""

    voters: list[VoterRow]
    encoding: str  # "UTF-8", "UTF-8 avec BOM", "Windows-1252" or "UTF-16"
    delimiter: str


def decode_registry(data: bytes) -> tuple[str, str]:
    """The text of a registry file and the name of its encoding.

    Strict UTF-8 first: text in Windows-1252 with any accent is almost never valid UTF-8, while
    UTF-8 read as Windows-1252 would silently give « Ã© ». A guesser (charset-normalizer) would
    choose among dozens of encodings; a French spreadsheet writes only these.
    """
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # Excel's « Texte Unicode »
        try:
            return data.decode("utf-16"), "UTF-16"
        except UnicodeDecodeError:
            pass
    elif data.startswith(codecs.BOM_UTF8):
        try:
            return data.decode("utf-8-sig"), "UTF-8 avec BOM"
        except UnicodeDecodeError:
            pass
    else:
        for codec, name in (("utf-8", "UTF-8"), ("cp1252", "Windows-1252")):
            try:
                return data.decode(codec), name
            except UnicodeDecodeError:
                continue
    raise VoterImportError(
        "Encodage du fichier non reconnu (ni UTF-8, ni Windows-1252) : enregistrez-le depuis "
        "le tableur en « CSV UTF-8 » ou en « CSV (séparateur : point-virgule) » et recommencez."
    )


def read_voters(source: Path | str) -> RegistryFile:
    """The voters of the CSV file `source`, each line checked; `VoterImportError` lists every
    bad line."""
    text, encoding = decode_registry(Path(source).read_bytes())
    delimiter = _delimiter(text)
    return RegistryFile(parse_voters(text, delimiter), encoding, delimiter)


def parse_voters(text: str, delimiter: str | None = None) -> list[VoterRow]:
    """The voters of a CSV text (separator read from the header line unless given), each line
    checked; `VoterImportError` lists every bad line."""
    text = text.lstrip("\ufeff")
    delimiter = delimiter or _delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = [name.strip().lower() for name in next(reader, [])]
    missing = [column for column in COLUMNS if column not in header]
    if missing:
        raise VoterImportError(
            f"Ligne 1 : colonne(s) manquante(s) : {', '.join(missing)} "
            f"(colonnes attendues : {','.join(COLUMNS)} ; séparateur « ; » ou « , »)."
        )
    index = {column: header.index(column) for column in COLUMNS}
    voters: list[VoterRow] = []
    problems: list[str] = []
    first_line_of: dict[tuple[str, str], int] = {}
    for line, fields in _records(reader):
        if not any(value.strip() for value in fields):
            continue  # an empty line, or `;;;;;;` from a row the spreadsheet kept
        row_problems, voter = _voter(fields, index, len(header), line)
        if voter is not None:
            for key, what in ((voter.numen, "NUMEN"), (voter.email, "adresse e-mail")):
                first = first_line_of.setdefault((what, key), line)
                if first != line:
                    row_problems.append(
                        f"Ligne {line} : même {what} que la ligne {first} ; "
                        "chaque électeur doit figurer une seule fois."
                    )
        if row_problems:
            problems += row_problems
        elif voter is not None:
            voters.append(voter)
    if problems:
        raise VoterImportError(problems)
    return voters


def _delimiter(text: str) -> str:
    """The separator that splits the header line into the most expected column names (csv's
    Sniffer guesses from frequencies and may pick a letter; we know what the header holds)."""
    first_line = text.lstrip("\ufeff").split("\n", 1)[0]
    if not first_line.strip():
        raise VoterImportError("Le fichier est vide : la première ligne doit nommer les colonnes.")

    def known_columns(delimiter: str) -> int:
        names = next(csv.reader([first_line], delimiter=delimiter), [])
        return sum(name.strip().lower() in COLUMNS for name in names)

    return max(DELIMITERS, key=lambda d: (known_columns(d), first_line.count(d)))


def _records(reader: Iterator[list[str]]) -> Iterator[tuple[int, list[str]]]:
    """Each record with the line where it starts (a quoted field may hold line breaks)."""
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error:  # a NUL byte, or a quote never closed that swallows the whole file
            raise VoterImportError(
                f"Ligne {start} : ligne illisible (caractère nul, ou guillemet jamais refermé) ; "
                "enregistrez le fichier depuis le tableur au format CSV et recommencez."
            ) from None
        yield start, fields


def _voter(
    fields: list[str], index: dict[str, int], width: int, line: int
) -> tuple[list[str], VoterRow | None]:
    """The problems of one line, and its voter when there are none."""
    extra = fields[width:]
    if len(fields) < width or any(value.strip() for value in extra):
        hint = " ; un guillemet n'est-il pas refermé ?" if len(fields) < width else ""
        return [
            f"Ligne {line} : nombre de champs incorrect ({width} attendus, "
            f"{len(fields)} trouvés){hint}."
        ], None
    row = {column: fields[position] for column, position in index.items()}
    problems: list[str] = []
    numen = re.sub(r"\s", "", row["numen"]).upper()
    if not NUMEN.match(numen):
        problems.append(
            f"Ligne {line} : NUMEN invalide (13 caractères attendus : 2 chiffres, 1 lettre, "
            "7 chiffres, 3 lettres)."
        )
    names = {column: row[column].strip() for column in TEXT_COLUMNS}
    for column, value in names.items():
        if not value:
            problems.append(f"Ligne {line} : le champ « {column} » est vide.")
        elif len(value) > MAX_LENGTHS[column]:
            problems.append(
                f"Ligne {line} : le champ « {column} » dépasse {MAX_LENGTHS[column]} caractères."
            )
    birth_date, date_problem = _birth_date(row["date_naissance"])
    if date_problem:
        problems.append(f"Ligne {line} : date de naissance {date_problem}.")
    email = row["email"].strip().lower()
    if len(email) > MAX_LENGTHS["email"] or not EMAIL.match(email):
        problems.append(
            f"Ligne {line} : adresse e-mail invalide (forme attendue : prenom.nom@ac-xxxx.fr)."
        )
    if problems or birth_date is None:
        return problems, None
    return [], VoterRow(numen=numen, date_naissance=birth_date, email=email, line=line, **names)


def _birth_date(text: str) -> tuple[date | None, str]:
    """The date, or why it is refused (without the value)."""
    for pattern in BIRTH_DATES:
        match = pattern.match(text.strip())
        if match is None:
            continue
        try:
            born = date(int(match["year"]), int(match["month"]), int(match["day"]))
        except ValueError:  # 31/02/1980, 12/13/1980
            return None, "impossible (ce jour n'existe pas dans le calendrier)"
        if born.year < OLDEST_BIRTH_YEAR or born >= date.today():
            return None, f"impossible (antérieure à {OLDEST_BIRTH_YEAR} ou pas encore passée)"
        return born, ""
    return None, "invalide (formats acceptés : jj/mm/aaaa ou aaaa-mm-jj)"


def import_voters(engine: Engine, source: Path | str) -> ImportReport:
    """Check then import the CSV file `source` into the registry, in one transaction."""
    return save_voters(engine, read_voters(source).voters)


def save_voters(engine: Engine, voters: list[VoterRow]) -> ImportReport:
    """Add or update (by NUMEN) `voters` in one transaction; their reissue counts are kept.

    An address that already belongs to a voter absent from `voters` refuses the whole list."""
    created = updated = 0
    numens = {row.numen for row in voters}
    try:
        with Session(engine, future=True) as session, session.begin():
            existing = {
                voter.numen: voter
                for chunk in _chunks([row.numen for row in voters])
                for voter in session.scalars(select(Voter).where(Voter.numen.in_(chunk)))
            }
            owner_of = dict(
                pair
                for chunk in _chunks([row.email for row in voters])
                for pair in session.execute(
                    select(Voter.email, Voter.numen).where(Voter.email.in_(chunk))
                )
            )
            taken = [
                f"Ligne {row.line} : cette adresse e-mail est déjà celle d'un autre électeur "
                "du registre, absent du fichier."
                for row in voters
                if owner_of.get(row.email, row.numen) not in numens
            ]
            if taken:
                raise VoterImportError(taken)
            # Voters who exchange or pass on addresses: free the old ones first (the column
            # is unique, checked at each UPDATE), with a placeholder unique per NUMEN.
            for row in voters:
                voter = existing.get(row.numen)
                if voter is not None and voter.email != row.email:
                    voter.email = f"{row.numen.lower()}@changement.invalid"
            session.flush()
            for row in voters:
                fields = {
                    "nom": row.nom,
                    "prenom": row.prenom,
                    "date_naissance": row.date_naissance,
                    "email": row.email,
                    "academie": row.academie,
                    "categorie": row.categorie,
                }
                voter = existing.get(row.numen)
                if voter is None:
                    session.add(Voter(numen=row.numen, reissues=0, **fields))
                    created += 1
                else:
                    for name, value in fields.items():
                        setattr(voter, name, value)
                    updated += 1
    except IntegrityError:  # another import, at the same time, took an address of the file
        raise VoterImportError(
            "Le registre a changé pendant l'import (un autre import en cours ?) : "
            "rien n'a été modifié, recommencez."
        ) from None
    return ImportReport(created, updated)


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), QUERY_CHUNK):
        yield values[start : start + QUERY_CHUNK]


def registry_size(engine: Engine) -> int:
    with Session(engine, future=True) as session:
        return session.scalar(select(func.count()).select_from(Voter))
