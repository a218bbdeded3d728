"""The simulated portal's voter registry, imported from a CSV file.

Columns: `numen,nom,prenom,date_naissance,email,academie,categorie` (comma or semicolon, as
spreadsheets export it), `date_naissance` as jj/mm/aaaa. The whole file is checked before
anything is written; a bad row stops the import with its line number. Importing again updates
voters by NUMEN and keeps their count of reissues.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.portal.models import Voter

DEMO_CSV = Path(__file__).with_name("demo_voters.csv")
COLUMNS = ("numen", "nom", "prenom", "date_naissance", "email", "academie", "categorie")
NUMEN = re.compile(r"^\d{2}[A-Z]\d{7}[A-Z]{3}$")
BIRTH_DATE = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
EMAIL = re.compile(r"^[a-z0-9](?:[a-z0-9._+'-]*[a-z0-9])?@[a-z0-9-]+(?:\.[a-z0-9-]+)+$")


class VoterImportError(ValueError):
    """A file that cannot be imported; the message, in French, says where and why.

    It never repeats the value found: a NUMEN is confidential.
    """


@dataclass(frozen=True)
class VoterRow:
    numen: str
    nom: str
    prenom: str
    date_naissance: date
    email: str
    academie: str
    categorie: str


@dataclass(frozen=True)
class ImportReport:
    created: int
    updated: int


def parse_voters(text: str) -> list[VoterRow]:
    """The voters of a CSV text, each row checked; `VoterImportError` at the first bad one."""
    text = text.lstrip("\ufeff")
    first_line = text.split("\n", 1)[0]
    if not first_line.strip():
        raise VoterImportError("Le fichier est vide : la première ligne doit nommer les colonnes.")
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    header = [(name or "").strip().lower() for name in reader.fieldnames or []]
    missing = [column for column in COLUMNS if column not in header]
    if missing:
        raise VoterImportError(
            f"Ligne 1 : colonne(s) manquante(s) : {', '.join(missing)} "
            f"(colonnes attendues : {','.join(COLUMNS)})."
        )
    reader.fieldnames = header
    voters: list[VoterRow] = []
    seen_numen: dict[str, int] = {}
    seen_email: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        if None in row or any(row.get(column) is None for column in COLUMNS):
            raise VoterImportError(
                f"Ligne {line} : nombre de champs incorrect ({len(header)} attendus)."
            )
        voter = _voter(row, line)
        for key, seen, what in (
            (voter.numen, seen_numen, "NUMEN"),
            (voter.email, seen_email, "adresse e-mail"),
        ):
            if key in seen:
                raise VoterImportError(
                    f"Ligne {line} : même {what} que la ligne {seen[key]} ; "
                    "chaque électeur doit figurer une seule fois."
                )
            seen[key] = line
        voters.append(voter)
    return voters


def _voter(row: dict[str, str], line: int) -> VoterRow:
    numen = re.sub(r"\s", "", row["numen"]).upper()
    if not NUMEN.match(numen):
        raise VoterImportError(
            f"Ligne {line} : NUMEN invalide (13 caractères attendus : 2 chiffres, 1 lettre, "
            "7 chiffres, 3 lettres)."
        )
    names = {column: row[column].strip() for column in ("nom", "prenom", "academie", "categorie")}
    for column, value in names.items():
        if not value:
            raise VoterImportError(f"Ligne {line} : le champ « {column} » est vide.")
    birth_date = _birth_date(row["date_naissance"])
    if birth_date is None:
        raise VoterImportError(
            f"Ligne {line} : date de naissance invalide (format attendu : jj/mm/aaaa)."
        )
    email = row["email"].strip().lower()
    if len(email) > 254 or not EMAIL.match(email):
        raise VoterImportError(
            f"Ligne {line} : adresse e-mail invalide (forme attendue : prenom.nom@ac-xxxx.fr)."
        )
    return VoterRow(numen=numen, date_naissance=birth_date, email=email, **names)


def _birth_date(text: str) -> date | None:
    match = BIRTH_DATE.match(text.strip())
    if match is None:
        return None
    day, month, year = (int(part) for part in match.groups())
    try:
        return date(year, month, day)
    except ValueError:  # 31/02/1980
        return None


def import_voters(engine: Engine, source: Path | str) -> ImportReport:
    """Check then import the CSV file `source` into the registry, in one transaction."""
    try:
        text = Path(source).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise VoterImportError(
            "Le fichier n'est pas en UTF-8 : enregistrez-le en « CSV UTF-8 » et recommencez."
        ) from None
    return save_voters(engine, parse_voters(text))


def save_voters(engine: Engine, voters: list[VoterRow]) -> ImportReport:
    """Add or update (by NUMEN) `voters`; their reissue counts are kept."""
    created = updated = 0
    try:
        with Session(engine, future=True) as session, session.begin():
            existing = {
                v.numen: v
                for v in session.scalars(
                    select(Voter).where(Voter.numen.in_([v.numen for v in voters]))
                )
            }
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
    except IntegrityError:
        raise VoterImportError(
            "Une adresse e-mail du fichier appartient déjà à un autre électeur du registre : "
            "corrigez-la et recommencez."
        ) from None
    return ImportReport(created, updated)


def registry_size(engine: Engine) -> int:
    with Session(engine, future=True) as session:
        return session.scalar(select(func.count()).select_from(Voter))
