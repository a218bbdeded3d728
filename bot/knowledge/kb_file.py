"""Parse `kb/faq_fr.md` into plain data.

The file is written for people; this module reads its tables and answer sections and fails
loudly (`KbFormatError`) when something a human edited no longer makes sense, so a typo in the
knowledge base stops the start-up instead of producing a wrong answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

PLACEHOLDER = re.compile(r"\{([a-z_]+)(?:\.(debut|fin))?\}")
ANSWER_ID = re.compile(r"<!--\s*id:\s*([a-z_]+)\s*(?:;\s*calendrier:\s*([a-z_]+)\s*)?-->")
ACADEMIE_DOMAIN = re.compile(r"(ac-[a-z-]+)\.fr$")


class KbFormatError(ValueError):
    """The knowledge base file does not have the expected structure."""


@dataclass(frozen=True)
class Event:
    key: str
    label: str
    start: datetime | None
    end: datetime | None
    start_has_time: bool
    end_has_time: bool


@dataclass(frozen=True)
class Rule:
    key: str
    value: str
    meaning: str


@dataclass(frozen=True)
class Departement:
    number: str
    name: str


@dataclass(frozen=True)
class Academie:
    name: str
    webmail_host: str
    password_recovery: str
    domain: str
    aliases: tuple[str, ...] = ()
    departements: tuple[Departement, ...] = ()


@dataclass(frozen=True)
class Scrutin:
    code: str
    title: str
    role: str


@dataclass(frozen=True)
class Category:
    name: str
    scrutins: tuple[str, ...]
    aliases: tuple[str, ...] = ()


# The row of "Indices de la situation" for jobs the eligibility table does not cover.
OUTSIDE_TABLE = "Hors tableau"


@dataclass(frozen=True)
class CategoryCues:
    """Words that describe a staff category's job ("j'enseigne en CM2") rather than name it.

    `refines` names a group ("PsyEN") that the cues only make precise, once it was named.
    """

    name: str
    cues: tuple[str, ...]
    refines: str | None = None


@dataclass(frozen=True)
class City:
    """A préfecture, sous-préfecture or large commune and the number of its département."""

    name: str
    departement: str
    ordinary_word: bool = False


@dataclass(frozen=True)
class Answer:
    key: str
    title: str
    template: str
    event_key: str | None = None


@dataclass
class KnowledgeBase:
    timezone: str
    events: list[Event] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    academies: list[Academie] = field(default_factory=list)
    scrutins: list[Scrutin] = field(default_factory=list)
    categories: list[Category] = field(default_factory=list)
    answers: list[Answer] = field(default_factory=list)
    # Names shared by several categories ("PsyEN" -> détaché or intégré): name -> aliases
    category_groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Job descriptions, highest precedence first (kb/faq_fr.md, "Indices de la situation").
    category_cues: list[CategoryCues] = field(default_factory=list)
    # Cities and their département (kb/villes.md), to find the académie of « prof à Quimper ».
    cities: list[City] = field(default_factory=list)
    # Words of near-domain questions this base does not answer (section « Hors sujet »).
    off_topic_cues: tuple[str, ...] = ()


def _sections(text: str, level: int) -> dict[str, str]:
    """Split markdown into {heading: body} for headings of exactly `level` '#'."""
    marker = "#" * level + " "
    sections: dict[str, str] = {}
    current = None
    lines: list[str] = []
    for line in text.splitlines():
        if line.startswith(marker):
            if current is not None:
                sections[current] = "\n".join(lines)
            current, lines = line[len(marker) :].strip(), []
        elif current is not None:
            lines.append(line)
    if current is not None:
        sections[current] = "\n".join(lines)
    return sections


def _first_table(body: str, where: str) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the first markdown table in `body` (stops at the first blank line)."""
    rows: list[list[str]] = []
    started = False
    for line in body.splitlines():
        stripped = line.strip()
        if stripped.startswith("|"):
            started = True
            cells = [c.strip() for c in stripped.strip("|").split("|")]
            if all(re.fullmatch(r":?-{3,}:?", c) for c in cells):
                continue
            rows.append(cells)
        elif started:
            break
    if len(rows) < 2:
        raise KbFormatError(f"Tableau introuvable ou vide dans la section « {where} ».")
    header, data = rows[0], rows[1:]
    for row in data:
        if len(row) != len(header):
            raise KbFormatError(
                f"Section « {where} » : la ligne {row!r} a {len(row)} colonnes au lieu de "
                f"{len(header)}."
            )
    return header, data


def _section(sections: dict[str, str], title: str) -> str:
    if title not in sections:
        raise KbFormatError(f"Section « {title} » manquante dans la base de connaissances.")
    return sections[title]


def _parse_instant(value: str, where: str) -> tuple[datetime | None, bool]:
    if not value:
        return None, False
    for fmt, has_time in (("%Y-%m-%d %H:%M", True), ("%Y-%m-%d", False)):
        try:
            return datetime.strptime(value, fmt), has_time
        except ValueError:
            continue
    raise KbFormatError(
        f"Date illisible « {value} » ({where}) : écrire AAAA-MM-JJ ou AAAA-MM-JJ HH:MM."
    )


def _aliases(body: str, where: str) -> dict[str, tuple[str, ...]]:
    _, rows = _first_table(body, where)
    return {
        name: tuple(a.strip() for a in aliases.split(",") if a.strip()) for name, aliases in rows
    }


def _parse_calendar(body: str) -> tuple[str, list[Event]]:
    tz = re.search(r"^Fuseau horaire\s*:\s*(\S+)\s*$", body, re.MULTILINE)
    if not tz:
        raise KbFormatError("Calendrier : ligne « Fuseau horaire : … » manquante.")
    events = []
    for key, label, start, end in _first_table(body, "Calendrier")[1]:
        start_at, start_has_time = _parse_instant(start, key)
        end_at, end_has_time = _parse_instant(end, key)
        if start_at is None and end_at is None:
            raise KbFormatError(f"Calendrier : l'événement « {key} » n'a ni début ni fin.")
        if start_at and end_at and end_at < start_at:
            raise KbFormatError(f"Calendrier : l'événement « {key} » finit avant de commencer.")
        if ":" in label:
            # The answers add « : ouvert en ce moment… » after it: one colon per line.
            raise KbFormatError(
                f"Calendrier : le libellé de « {key} » contient « : » ; la réponse en ajoute un "
                "après lui (« … : ouvert en ce moment »). Mettez le détail entre parenthèses."
            )
        events.append(Event(key, label, start_at, end_at, start_has_time, end_has_time))
    return tz.group(1), events


def _parse_academies(sections: dict[str, str]) -> list[Academie]:
    body = _section(sections, "Messageries professionnelles des académies")
    subsections = _sections(body, 3)
    aliases = _aliases(subsections.get("Autres noms des académies", ""), "Autres noms")
    departements = _parse_departements(subsections.get("Départements", ""))
    academies = []
    for name, host, recovery in _first_table(body, "Messageries")[1]:
        domain = ACADEMIE_DOMAIN.search(host)
        if not domain:
            raise KbFormatError(f"Messagerie de {name} : « {host} » n'est pas un hôte ac-….fr.")
        academies.append(
            Academie(
                name,
                host,
                recovery,
                domain.group(1),
                aliases.pop(name, ()),
                tuple(departements.pop(name, ())),
            )
        )
    if aliases:
        raise KbFormatError(f"Autres noms pour des académies inconnues : {sorted(aliases)}.")
    if departements:
        raise KbFormatError(f"Départements d'académies inconnues : {sorted(departements)}.")
    return academies


def _parse_departements(body: str) -> dict[str, list[Departement]]:
    by_academie: dict[str, list[Departement]] = {}
    seen: set[str] = set()
    for number, name, academie in _first_table(body, "Départements")[1]:
        if not re.fullmatch(r"\d{2,3}|2[AB]", number) or number in seen:
            raise KbFormatError(f"Départements : numéro « {number} » invalide ou en double.")
        seen.add(number)
        by_academie.setdefault(academie, []).append(Departement(number, name))
    return by_academie


def categories_named(name: str, categories: list[str]) -> list[str]:
    """The categories a name designates: itself, or all those it begins ("PsyEN")."""
    if name in categories:
        return [name]
    return [c for c in categories if c.casefold().startswith(name.casefold() + " ")]


def _parse_eligibility(
    sections: dict[str, str], scrutins: list[Scrutin]
) -> tuple[list[Category], dict[str, tuple[str, ...]]]:
    body = _section(sections, "Qui vote où ?")
    aliases = _aliases(_sections(body, 3).get("Autres noms des catégories de personnel", ""), "")
    header, rows = _first_table(body, "Qui vote où ?")
    columns = header[1:-1]
    known = {s.code for s in scrutins}
    if set(columns) != known:
        raise KbFormatError(
            f"Qui vote où : colonnes {sorted(set(columns) ^ known)} absentes du tableau Scrutins."
        )
    categories = []
    for row in rows:
        name, marks, declared = row[0], row[1:-1], row[-1]
        pairs = zip(columns, marks, strict=True)
        voted = tuple(code for code, mark in pairs if mark.upper() == "X")
        if not declared.isdigit() or int(declared) != len(voted):
            raise KbFormatError(
                f"Qui vote où : « {name} » a {len(voted)} X mais annonce {declared} scrutins."
            )
        categories.append(Category(name, voted, aliases.pop(name, ())))
    for group in aliases:
        if len(categories_named(group, [c.name for c in categories])) < 2:
            raise KbFormatError(f"Autres noms pour une catégorie inconnue : « {group} ».")
    return categories, aliases


def _parse_category_cues(
    sections: dict[str, str], categories: list[Category], groups: dict[str, tuple[str, ...]]
) -> list[CategoryCues]:
    body = _sections(_section(sections, "Qui vote où ?"), 3).get("Indices de la situation")
    if body is None:
        return []
    names = {c.name for c in categories} | set(groups) | {OUTSIDE_TABLE}
    found = []
    for name, cues, refines in _first_table(body, "Indices de la situation")[1]:
        if name not in names or (refines and refines not in groups):
            raise KbFormatError(f"Indices de la situation : catégorie « {name} » inconnue.")
        words = tuple(c.strip() for c in cues.split(",") if c.strip())
        found.append(CategoryCues(name, words, refines or None))
    return found


def _parse_off_topic_cues(sections: dict[str, str]) -> tuple[str, ...]:
    body = sections.get("Hors sujet")
    if body is None:
        return ()
    rows = _first_table(body, "Hors sujet")[1]
    return tuple(c.strip() for _, cues in rows for c in cues.split(",") if c.strip())


def parse_cities(text: str) -> list[City]:
    """The table of `kb/villes.md`: Ville | Département | Rang | Mot courant."""
    cities = []
    for row in _first_table(text, "Villes et départements")[1]:
        name, number, ordinary = row[0], row[1], row[3]
        if not name or not re.fullmatch(r"\d{2,3}|2[AB]", number):
            raise KbFormatError(f"Villes : ligne « {name} | {number} » invalide.")
        cities.append(City(name, number, ordinary.strip().lower() == "oui"))
    return cities


LIST_ITEM = re.compile(r"^(?:[-*] |\d+\. )")


def unwrap(text: str) -> str:
    """Join the lines of each paragraph and list item; keep blank lines and list structure."""
    out: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        starts_block = not line or LIST_ITEM.match(line) is not None
        if out and out[-1] and not starts_block:
            out[-1] += " " + line
        else:
            out.append(line)
    return "\n".join(out)


def _parse_answers(body: str) -> list[Answer]:
    answers = []
    for title, text in _sections(body, 3).items():
        marker = ANSWER_ID.search(text)
        if not marker:
            raise KbFormatError(f"Réponse « {title} » : ligne <!-- id: … --> manquante.")
        template = unwrap(ANSWER_ID.sub("", text).strip())
        answers.append(Answer(marker.group(1), title, template, marker.group(2)))
    return answers


def _check_placeholders(kb: KnowledgeBase) -> None:
    events = {e.key: e for e in kb.events}
    rules = {r.key for r in kb.rules}
    for answer in kb.answers:
        if answer.event_key and answer.event_key not in events:
            raise KbFormatError(
                f"Réponse « {answer.title} » : événement « {answer.event_key} » inconnu."
            )
        for key, part in PLACEHOLDER.findall(answer.template):
            if part:
                event = events.get(key)
                when = None if event is None else (event.start if part == "debut" else event.end)
                if when is None:
                    raise KbFormatError(f"Réponse « {answer.title} » : {{{key}.{part}}} inconnu.")
            elif key not in rules:
                raise KbFormatError(f"Réponse « {answer.title} » : valeur {{{key}}} inconnue.")


# The editors' mark for what the source does not say (`kb/faq_fr.md`, « Comment l'écrire »): it
# belongs beside the tables, never in what a voter reads.
EDITORS_MARK = re.compile(r"source\s+muette", re.IGNORECASE)


def _check_editors_marks(kb: KnowledgeBase) -> None:
    for answer in kb.answers:
        if EDITORS_MARK.search(answer.template):
            raise KbFormatError(
                f"Réponse « {answer.title} » : « source muette » est une note pour les "
                "rédacteurs ; dites en clair ce que l'assistant ne sait pas et où le trouver."
            )
    for scrutin in kb.scrutins:
        if EDITORS_MARK.search(f"{scrutin.title} {scrutin.role}"):
            raise KbFormatError(
                f"Scrutin {scrutin.code} : « source muette » est une note pour les rédacteurs, "
                "pas un texte à montrer aux électeurs."
            )


def parse_kb(text: str) -> KnowledgeBase:
    """Parse the knowledge base markdown; raise `KbFormatError` on any inconsistency."""
    text = text.replace("\r\n", "\n")
    sections = _sections(text, 2)
    timezone, events = _parse_calendar(_section(sections, "Calendrier"))
    _, rule_rows = _first_table(_section(sections, "Règles et limites"), "Règles et limites")
    _, scrutin_rows = _first_table(_section(sections, "Scrutins"), "Scrutins")
    rules = [Rule(*row) for row in rule_rows]
    scrutins = [Scrutin(*row) for row in scrutin_rows]
    categories, category_groups = _parse_eligibility(sections, scrutins)
    kb = KnowledgeBase(
        timezone=timezone,
        events=events,
        rules=rules,
        academies=_parse_academies(sections),
        scrutins=scrutins,
        categories=categories,
        category_groups=category_groups,
        category_cues=_parse_category_cues(sections, categories, category_groups),
        off_topic_cues=_parse_off_topic_cues(sections),
        answers=_parse_answers(_section(sections, "Réponses")),
    )
    _check_placeholders(kb)
    _check_editors_marks(kb)
    return kb


CITIES_FILE = "villes.md"


def read_kb(path: Path) -> KnowledgeBase:
    """Read and parse a knowledge base file, with the cities of `villes.md` beside it."""
    kb = parse_kb(Path(path).read_text(encoding="utf-8"))
    cities = Path(path).with_name(CITIES_FILE)
    if cities.exists():
        kb.cities = parse_cities(cities.read_text(encoding="utf-8"))
        known = {d.number for a in kb.academies for d in a.departements}
        unknown = sorted({c.departement for c in kb.cities} - known)
        if unknown:
            raise KbFormatError(f"Villes : départements inconnus {unknown}.")
    return kb
