"""Seed the knowledge database from `kb/faq_fr.md` and answer questions from it."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime, time
from functools import lru_cache
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from bot import config
from bot.db import create_schema, make_engine
from bot.knowledge import clock, kb_file, models
from bot.knowledge.french import french_date
from bot.knowledge.matching import scrutins_named
from bot.knowledge.search import AnswerSearch, Hit

logger = logging.getLogger(__name__)


def load_kb(engine: Engine, kb_path: Path, force: bool = False) -> bool:
    """Make the database hold `kb_path`; return True when it (re)loaded.

    The file's SHA-256 is stored, so an unchanged file costs one query. The whole replacement is
    one transaction: readers see the old or the new knowledge base, never a mix. The tables must
    exist (`bot.db.create_schema`).
    """
    raw = Path(kb_path).read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    kb = kb_file.parse_kb(raw.decode("utf-8"))
    with Session(engine, future=True) as session:
        current = session.scalars(select(models.KbVersion.sha256)).first()
    if current == digest and not force:
        return False
    with Session(engine, future=True) as session, session.begin():
        for table in reversed(models.Base.metadata.sorted_tables):
            session.execute(delete(table))
        _insert(session, kb, digest)
    logger.info("knowledge base loaded from %s (sha256 %s)", kb_path, digest[:12])
    return True


def _insert(session: Session, kb: kb_file.KnowledgeBase, digest: str) -> None:
    session.add(models.KbVersion(sha256=digest, timezone=kb.timezone))
    for e in kb.events:
        session.add(
            models.Evenement(
                cle=e.key,
                libelle=e.label,
                debut=e.start,
                fin=e.end,
                debut_avec_heure=e.start_has_time,
                fin_avec_heure=e.end_has_time,
            )
        )
    for r in kb.rules:
        session.add(models.Regle(cle=r.key, valeur=r.value, signification=r.meaning))
    for rank, a in enumerate(kb.academies):
        session.add(
            models.Academie(
                rang=rank,
                nom=a.name,
                messagerie=a.webmail_host,
                recuperation_mdp=a.password_recovery,
                domaine=a.domain,
                alias=[models.AcademieAlias(nom=alias) for alias in a.aliases],
                departements=[
                    models.Departement(numero=d.number, nom=d.name) for d in a.departements
                ],
            )
        )
    scrutins = {}
    for rank, s in enumerate(kb.scrutins):
        scrutins[s.code] = models.Scrutin(rang=rank, sigle=s.code, intitule=s.title, role=s.role)
        session.add(scrutins[s.code])
    for rank, c in enumerate(kb.categories):
        session.add(
            models.Categorie(
                rang=rank,
                nom=c.name,
                scrutins=[scrutins[code] for code in c.scrutins],
                alias=[models.CategorieAlias(nom=alias) for alias in c.aliases],
            )
        )
    for name, aliases in kb.category_groups.items():
        session.add(models.GroupeCategories(nom=name, alias=", ".join(aliases)))
    for rank, answer in enumerate(kb.answers):
        session.add(
            models.Reponse(
                rang=rank,
                cle=answer.key,
                titre=answer.title,
                gabarit=answer.template,
                evenement_cle=answer.event_key,
            )
        )


@dataclass(frozen=True)
class Period:
    """A calendar event, with its bounds worded in French."""

    key: str
    label: str
    start: datetime | None  # local time, naive
    end: datetime | None  # local time, naive; a date without hour ends at 23:59:59
    start_text: str | None
    end_text: str | None
    start_has_time: bool = False
    end_has_time: bool = False

    def status(self, now: datetime) -> str:
        """'before', 'open' or 'closed' for a naive local `now`."""
        if self.start is not None and now < self.start:
            return "before"
        if self.end is not None and now > self.end:
            return "closed"
        return "open"


@dataclass(frozen=True)
class ScrutinInfo:
    code: str
    title: str
    role: str
    voters: tuple[str, ...]


@dataclass(frozen=True)
class AcademieInfo:
    name: str
    webmail_host: str
    password_recovery: str
    domain: str


@dataclass(frozen=True)
class AnswerText:
    key: str
    title: str
    text: str
    period: Period | None


class Knowledge:
    """Read-only questions to the knowledge database. One short session per call."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._search: AnswerSearch | None = None

    @property
    def timezone(self) -> str:
        with Session(self._engine, future=True) as session:
            return session.scalars(select(models.KbVersion.timezone)).one()

    def rule(self, key: str) -> str:
        with Session(self._engine, future=True) as session:
            return session.scalars(select(models.Regle.valeur).filter_by(cle=key)).one()

    def answer(self, key: str) -> AnswerText | None:
        """The knowledge base answer `key`, its placeholders filled in."""
        with Session(self._engine, future=True) as session:
            row = session.scalars(select(models.Reponse).filter_by(cle=key)).first()
            if row is None:
                return None
            text = self._fill(session, row.gabarit)
            period = None
            if row.evenement_cle:
                period = _period(
                    session.scalars(select(models.Evenement).filter_by(cle=row.evenement_cle)).one()
                )
            return AnswerText(row.cle, row.titre, text, period)

    def period(self, key: str) -> Period | None:
        """The calendar event `key` of the knowledge base (e.g. "nouvel_identifiant")."""
        with Session(self._engine, future=True) as session:
            row = session.scalars(select(models.Evenement).filter_by(cle=key)).first()
            return None if row is None else _period(row)

    def period_status(self, key: str) -> str:
        """'before', 'open' or 'closed' for event `key`, by the assistant's clock."""
        period = self.period(key)
        if period is None:
            raise KeyError(key)
        return period.status(clock.now(self.timezone).replace(tzinfo=None))

    def answer_titles(self) -> list[tuple[str, str]]:
        """(key, title) of every answer, in knowledge-base order."""
        with Session(self._engine, future=True) as session:
            rows = session.execute(
                select(models.Reponse.cle, models.Reponse.titre).order_by(models.Reponse.rang)
            )
            return [(key, title) for key, title in rows]

    def search_answers(self, question: str, limit: int = 3) -> list[Hit]:
        """Answers ranked by textual similarity to `question` (built once per process)."""
        if self._search is None:
            with Session(self._engine, future=True) as session:
                rows = session.scalars(select(models.Reponse).order_by(models.Reponse.rang))
                self._search = AnswerSearch(
                    [(r.cle, r.titre, self._fill(session, r.gabarit)) for r in rows]
                )
        return self._search.rank(question, limit)

    def academie(self, name: str) -> AcademieInfo | None:
        with Session(self._engine, future=True) as session:
            row = session.scalars(select(models.Academie).filter_by(nom=name)).first()
            return None if row is None else _academie(row)

    def academies(self) -> list[AcademieInfo]:
        with Session(self._engine, future=True) as session:
            rows = session.scalars(select(models.Academie).order_by(models.Academie.rang))
            return [_academie(row) for row in rows]

    def categories(self) -> list[str]:
        with Session(self._engine, future=True) as session:
            return list(
                session.scalars(select(models.Categorie.nom).order_by(models.Categorie.rang))
            )

    def categories_named(self, name: str) -> list[str]:
        """The categories a name designates ("PsyEN": both PsyEN categories)."""
        return kb_file.categories_named(name, self.categories())

    def eligibility_for(self, category: str) -> list[ScrutinInfo] | None:
        """The scrutins a staff category votes in (None for an unknown category)."""
        with Session(self._engine, future=True) as session:
            row = session.scalars(select(models.Categorie).filter_by(nom=category)).first()
            return None if row is None else [_scrutin(s) for s in row.scrutins]

    def scrutins_named(self, name: str) -> list[ScrutinInfo]:
        """Scrutins designated by a code or a short code ("CAPN" gives both CAPN)."""
        with Session(self._engine, future=True) as session:
            rows = list(session.scalars(select(models.Scrutin).order_by(models.Scrutin.rang)))
            codes = scrutins_named(name, [s.sigle for s in rows])
            return [_scrutin(s) for s in rows if s.sigle in codes]

    def _fill(self, session: Session, template: str) -> str:
        rules = dict(session.execute(select(models.Regle.cle, models.Regle.valeur)).all())
        events = {e.cle: _period(e) for e in session.scalars(select(models.Evenement))}

        def replace(match: re.Match[str]) -> str:
            key, part = match.group(1), match.group(2)
            if part is None:
                return rules[key]
            period = events[key]
            return (period.start_text if part == "debut" else period.end_text) or ""

        return kb_file.PLACEHOLDER.sub(replace, template)


def _period(row: models.Evenement) -> Period:
    end = row.fin
    if end is not None and not row.fin_avec_heure:
        end = datetime.combine(end.date(), time(23, 59, 59))
    return Period(
        key=row.cle,
        label=row.libelle,
        start=row.debut,
        end=end,
        start_text=row.debut and french_date(row.debut, row.debut_avec_heure),
        end_text=row.fin and french_date(row.fin, row.fin_avec_heure),
        start_has_time=row.debut_avec_heure,
        end_has_time=row.fin_avec_heure,
    )


def _academie(row: models.Academie) -> AcademieInfo:
    return AcademieInfo(row.nom, row.messagerie, row.recuperation_mdp, row.domaine)


def _scrutin(row: models.Scrutin) -> ScrutinInfo:
    return ScrutinInfo(row.sigle, row.intitule, row.role, tuple(c.nom for c in row.categories))


@lru_cache(maxsize=1)
def default_knowledge() -> Knowledge:
    """The process-wide knowledge base: `BOT_DATABASE_URL`, its tables created if missing (how
    the action server starts), loaded from `BOT_KB_PATH`."""
    engine = make_engine()
    create_schema(engine)
    load_kb(engine, config.kb_path())
    return Knowledge(engine)
